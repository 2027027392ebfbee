using System.Diagnostics;
using System.Globalization;
using Corral.Agent.Operations;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;

namespace Corral.Agent.Vms;

/// <summary>The source's half of a live migration: it sends, reports progress, decides, and concludes.</summary>
public sealed partial class MigrationHandler
{
    private async Task<string?> SendAsync(HostOperation operation, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        var run = new SendRun(TimeProvider.System);
        while (true)
        {
            var found = await ReadAsync(operation, cancellationToken);
            var (record, revision) = found is { } f ? (f.Record, f.Revision) : (null, 0L);
            var caughtUp = run.AsksAboutMirrors(record) && await MirrorsCaughtUpAsync(vm, record!, revision, cancellationToken);
            var copy = supervisor.Find(vm.Uuid);
            var step = run.Next(record, copy is not null, caughtUp);
            TimeSpan? pause = MigrationPace.After(step);
            switch (step)
            {
                case SendStep.Conclude:
                    // Resumed after the record was removed, the pool database says where the VM ended.
                    return await ConcludeAsync(vm, record, operation, cancellationToken);
                case SendStep.AbortNotReady:
                    await AbortAsync(record!, revision, "the destination did not get ready", cancellationToken);
                    break;
                case SendStep.StartMirrors:
                    await StartMirrorsAsync(vm, record!, revision, run, cancellationToken);
                    break;
                case SendStep.StartMigration:
                    await StartMigrationAsync(vm, record!, revision, run, cancellationToken);
                    break;
                case SendStep.AbortMirrorsLost:
                    // Resumed after a restart while copying: simplest and safe is to start the migration over.
                    await AbortAsync(record!, revision, "the source agent restarted while copying the disks", cancellationToken);
                    break;
                case SendStep.AbortSourceCopyGone:
                    await AbortAsync(record!, revision, "the source's QEMU process is gone", cancellationToken);
                    break;
                case SendStep.FollowQemu:
                    pause = MigrationPace.After(await FollowQemuAsync(vm, copy!, record!, revision, run, cancellationToken));
                    break;
            }

            if (pause is { } wait)
            {
                await Task.Delay(wait, cancellationToken);
            }
        }
    }

    private async Task StartMirrorsAsync(XenObject vm, MigrationRecord record, long revision, SendRun run, CancellationToken cancellationToken)
    {
        if (!await MigrationRecord.TryAdvanceAsync(database, record with { State = MigrationStates.Mirroring }, revision, cancellationToken))
        {
            return;
        }

        var (host, port) = SplitAddress(record.NbdAddress);
        logger.LogInformation("Copying the {Count} disk(s) of VM {Vm} to {Address}", record.Disks.Count, vm.Get(XenApi.VM.NameLabel), record.NbdAddress);
        foreach (var disk in record.Disks)
        {
            await Source(vm).StartDiskMirrorAsync(disk.DiskIndex, host, port, cancellationToken);
        }

        run.MirrorsStarted = true;
    }

    private async Task StartMigrationAsync(XenObject vm, MigrationRecord record, long revision, SendRun run, CancellationToken cancellationToken)
    {
        if (!run.Started && !await ShareLeaseAsync(vm, record, revision, cancellationToken))
        {
            return;
        }

        if (await MigrationRecord.TryAdvanceAsync(database, record with { State = MigrationStates.Migrating }, revision, cancellationToken))
        {
            var tuning = new MigrationTuning(TimeSpan.FromMilliseconds(record.DowntimeLimitMilliseconds), record.MaxBandwidthBytesPerSecond, record.AutoConverge);
            logger.LogInformation(MigrationEvents.Started, "Migrating VM {Vm} to {Uri}", vm.Get(XenApi.VM.NameLabel), record.DestinationUri);
            await Source(vm).StartMigrationAsync(record.DestinationUri, tuning, cancellationToken);
            run.Started = true;
        }
    }

    /// <summary>
    /// The source holds the VM's lease shared from here on, so that the destination can take it too before it runs the
    /// guest; an abort leaves it shared until the destination's copy is gone (<see cref="Corral.Agent.Storage.VmLeaseKeeper"/>).
    /// Refused (another host holds it exclusive), the migration is aborted.
    /// </summary>
    private async Task<bool> ShareLeaseAsync(XenObject vm, MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        try
        {
            await leases.HoldAsync(Source(vm), shared: true, cancellationToken);
            return true;
        }
        catch (XenApiException ex)
        {
            await AbortAsync(record, revision, ex.Message, cancellationToken);
            return false;
        }
    }

    /// <summary>One look at QEMU's outgoing migration, and the step <see cref="SendRun.Follow"/> decides on it, taken.</summary>
    private async Task<SourceStep> FollowQemuAsync(XenObject vm, IVmProcess source, MigrationRecord record, long revision, SendRun run, CancellationToken cancellationToken)
    {
        var state = await source.QueryMigrationAsync(cancellationToken);
        var step = run.Follow(record, state.Status);
        if (SwitchoverSteps.AsksAboutDestination(step))
        {
            step = SwitchoverSteps.GivenDestination(step, await HostIsLiveAsync(record.DestinationRef, cancellationToken));
        }

        switch (step)
        {
            case SourceStep.Commit:
                state = await SettledFiguresAsync(source, state, cancellationToken);
                logger.LogInformation("VM {Vm} sent: {Bytes} bytes of memory in {Total} ms, downtime {Downtime} ms",
                    vm.Get(XenApi.VM.NameLabel), state.TotalBytes, state.TotalTimeMilliseconds, state.DowntimeMilliseconds);
                await RecordFiguresAsync(record.TaskRef, state, cancellationToken);
                await TryCommitAsync(record, revision, cancellationToken);
                break;
            case SourceStep.Abort:
                await AbortAsync(record, revision, state.Error ?? "QEMU reported the migration " + state.Status.ToString().ToLowerInvariant(), cancellationToken);
                break;
            case SourceStep.AbortNotStarted:
                await AbortAsync(record, revision, "the source agent restarted before the migration began", cancellationToken);
                break;
            case SourceStep.AskAcknowledgement:
                await AskAcknowledgementAsync(source, record, revision, cancellationToken);
                break;
            case SourceStep.Release:
                await ReleaseAsync(vm, source, record, revision, cancellationToken);
                break;
            case SourceStep.CancelUnacknowledged:
                await CancelAsync(source, record, revision, "the destination's agent did not acknowledge the switchover", cancellationToken);
                break;
            case SourceStep.CancelGoAheadLost:
                await CancelAsync(source, record, revision, "QEMU did not act on the go-ahead for the switchover", cancellationToken);
                break;
            case SourceStep.CancelDestinationGone:
                // Nobody would look after the VM over there: keep it here.
                await CancelAsync(source, record, revision, "the destination host is no longer live", cancellationToken);
                break;
            case SourceStep.Stream:
                await StreamAsync(source, record, revision, state, cancellationToken);
                break;
        }

        return step;
    }

    /// <summary>
    /// QEMU says "completed" a moment before it works out the migration's total time and downtime (both read 0 until
    /// then): a few more looks for the figures the task records. The migration is complete either way.
    /// </summary>
    private static async Task<MigrationProgress> SettledFiguresAsync(IVmProcess source, MigrationProgress completed, CancellationToken cancellationToken)
    {
        var state = completed;
        for (var look = 0; look < 10 && state is { Status: MigrationStatus.Completed, TotalTimeMilliseconds: 0 }; look++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
            state = await source.QueryMigrationAsync(cancellationToken);
        }

        return state.Status == MigrationStatus.Completed ? state : completed;
    }

    /// <summary>
    /// QEMU holds at pre-switchover, the guest stopped: the disk copies end complete, then the destination is asked to
    /// acknowledge, before anyone may decide the VM runs there.
    /// </summary>
    private async Task AskAcknowledgementAsync(IVmProcess source, MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        if (record.Disks.Count > 0)
        {
            try
            {
                await source.CompleteDiskMirrorsAsync(cancellationToken);
            }
            catch (DiskMirrorException ex)
            {
                await CancelAsync(source, record, revision, ex.Message, cancellationToken);
                return;
            }
        }

        await MigrationRecord.TryAdvanceAsync(database, record with { State = MigrationStates.Switching }, revision, cancellationToken);
    }

    /// <summary>
    /// The go-ahead, once per migration: recorded first (a guarded write, so a resumed or restarted half, or a second
    /// look by this one, finds it and waits for QEMU instead of sending it again), then sent.
    /// </summary>
    private async Task ReleaseAsync(XenObject vm, IVmProcess source, MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        if (!await MigrationRecord.TryAdvanceAsync(database, record with { SwitchoverReleasedUtc = DateTime.UtcNow }, revision, cancellationToken))
        {
            return;
        }

        await source.ContinueMigrationAsync(cancellationToken);
        logger.LogInformation(MigrationEvents.SwitchoverReleased, "VM {Vm}: the destination acknowledged; switchover released", vm.Get(XenApi.VM.NameLabel));
    }

    /// <summary>Before QEMU completed: <c>migrate_cancel</c> (the guest resumes here) and the record says aborting.</summary>
    private async Task CancelAsync(IVmProcess source, MigrationRecord record, long revision, string error, CancellationToken cancellationToken)
    {
        await source.CancelMigrationAsync(cancellationToken);
        await AbortAsync(record, revision, error, cancellationToken);
    }

    /// <summary>Still sending, the destination live: gives up if a disk copy failed, else reports the progress.</summary>
    private async Task StreamAsync(IVmProcess source, MigrationRecord record, long revision, MigrationProgress state, CancellationToken cancellationToken)
    {
        if (record.Disks.Count > 0 && (await source.QueryDiskMirrorsAsync(cancellationToken)).FirstOrDefault(m => m.Failed) is { } failed)
        {
            await CancelAsync(source, record, revision, $"copying disk {failed.DiskIndex} failed: {failed.Error}", cancellationToken);
            return;
        }

        // With disks, the copies took the first half of the progress.
        var fraction = record.Disks.Count > 0 ? 0.5 + (state.Fraction * 0.45) : state.Fraction * 0.95;
        await tasks.SetProgressAsync(record.TaskRef, fraction, cancellationToken);
    }

    /// <summary>
    /// True once every disk mirror has caught up. Reports the copy's progress; aborts (and says false) if a mirror
    /// failed, the source's QEMU is gone or the destination is no longer live.
    /// </summary>
    private async Task<bool> MirrorsCaughtUpAsync(XenObject vm, MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        var source = supervisor.Find(vm.Uuid);
        if (source is null)
        {
            await AbortAsync(record, revision, "the source's QEMU process is gone", cancellationToken);
            return false;
        }

        var mirrors = await source.QueryDiskMirrorsAsync(cancellationToken);
        var failure = mirrors.FirstOrDefault(m => m.Failed) is { } failed ? $"copying disk {failed.DiskIndex} failed: {failed.Error}"
            : mirrors.Count < record.Disks.Count ? "a disk copy vanished"
            : !await HostIsLiveAsync(record.DestinationRef, cancellationToken) ? "the destination host is no longer live"
            : null;
        if (failure is not null)
        {
            await AbortAsync(record, revision, failure, cancellationToken);
            return false;
        }

        var total = mirrors.Sum(m => m.Length);
        await tasks.SetProgressAsync(record.TaskRef, total <= 0 ? 0 : 0.5 * mirrors.Sum(m => m.Offset) / total, cancellationToken);
        return mirrors.All(m => m.Ready);
    }

    private static (string Host, int Port) SplitAddress(string address)
    {
        var colon = address.LastIndexOf(':');
        return (address[..colon], int.Parse(address[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture));
    }

    private IVmProcess Source(XenObject vm) =>
        supervisor.Find(vm.Uuid) ?? throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, "running", "halted");

    /// <summary>Cleans up after the decision and ends the caller's task: success if the VM left, its error if not.</summary>
    private async Task<string?> ConcludeAsync(XenObject vmBefore, MigrationRecord? record, HostOperation operation, CancellationToken cancellationToken)
    {
        if (record is null && await MigrationRecord.ReadAsync(database, vmBefore.Ref, cancellationToken) is { } newer)
        {
            // This half resumed late (its agent restarted) after its migration had ended, and another migration of the
            // VM has begun since: the copy here, the VM's migration entries and the record are that migration's, and
            // none of them this one's to settle or remove.
            logger.LogWarning(MigrationEvents.Superseded, "A late migration of VM {Vm} ends without touching migration {Migration}, which began since",
                vmBefore.Get(XenApi.VM.NameLabel), newer.Record.Id);
            throw new XenApiException(ErrorCodes.VmMigrateFailed, vmBefore.Ref, identity.Ref, OpaqueRef.Null, "the migration was abandoned");
        }

        var vm = await database.GetAsync(XenClasses.VM, vmBefore.Ref, cancellationToken);
        var moved = vm.Get(XenApi.VM.ResidentOn) != identity.Ref;
        await SettleCopyAsync(vm, record, moved, cancellationToken);

        if (record is { Disks.Count: > 0 })
        {
            if (moved)
            {
                // The VM's disks are the copies now (the commit moved the VBDs and forgot the old VDIs): the old
                // volumes go, before the record that names them.
                await DeleteOldVolumesAsync(record, cancellationToken);
            }
            else if (supervisor.Find(vm.Uuid) is { } kept)
            {
                try
                {
                    await kept.AbandonDiskMirrorsAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Could not stop the disk mirrors of VM {Vm}", vm.Get(XenApi.VM.NameLabel));
                }
            }
        }

        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) => tx.Update(MigrationEnding.WithoutMigration(objs[0])), cancellationToken);
        if (record is not null)
        {
            // Its own record only: with none read, there is nothing of this migration's to remove.
            await database.Leases.DeleteAsync(MigrationRecord.KeyOf(vm.Ref), cancellationToken);
        }
        var failure = moved ? null : new XenApiException(ErrorCodes.VmMigrateFailed, vm.Ref, identity.Ref, record?.DestinationRef ?? OpaqueRef.Null,
            record?.Error is { Length: > 0 } error ? error : "the migration was abandoned");
        if (record is not null && record.TaskRef != operation.TaskRef)
        {
            // The caller's own task (an Async.VM.pool_migrate's) is ended by the API host once it sees this half end;
            // if that host died meanwhile (the master's plug pulled mid-migration), nobody would. Ending it here too
            // writes what the API host would have (VM.pool_migrate returns nothing); whichever comes second is a no-op.
            if (failure is null)
            {
                await tasks.CompleteAsync(record.TaskRef, null, cancellationToken);
            }
            else
            {
                await tasks.FailAsync(record.TaskRef, failure.ErrorDescription, cancellationToken);
            }
        }

        if (failure is not null)
        {
            throw failure;
        }

        logger.LogInformation(MigrationEvents.Migrated, "VM {Vm} migrated", vm.Get(XenApi.VM.NameLabel));
        return null;
    }

    /// <summary>This host's copy once the migration is decided, as <see cref="ConclusionSteps"/> says.</summary>
    private async Task SettleCopyAsync(XenObject vm, MigrationRecord? record, bool moved, CancellationToken cancellationToken)
    {
        var copy = supervisor.Find(vm.Uuid);
        MigrationProgress? state = null;
        if (copy is not null)
        {
            try
            {
                state = await copy.QueryMigrationAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogDebug(ex, "No migration state from the source's QEMU");
            }
        }

        switch (ConclusionSteps.Next(moved, copy is not null, state?.Status ?? MigrationStatus.None))
        {
            case ConclusionStep.KillStaleCopy:
                if (record is not null && state is { Status: MigrationStatus.Completed })
                {
                    // The destination may have committed first: QEMU's figures are still here to be recorded.
                    await RecordFiguresAsync(record.TaskRef, state, cancellationToken);
                }

                // Paused by QEMU at the end of the migration; it must never run again. Its taps go with it: the ones it
                // has, not ones named after the VM record's domid, which is the destination's once the migration committed.
                var taps = copy!.Spec.Nics.Select(n => n.TapName).ToList();
                await copy.KillAsync(cancellationToken);
                foreach (var tap in taps)
                {
                    await networking.DeleteLinkAsync(tap, cancellationToken);
                }

                return;
            case ConclusionStep.CancelMigration:
                logger.LogWarning(MigrationEvents.CancelledAtConclusion,
                    "Migration of VM {Vm} ended without it, QEMU still {Status}: cancelled, the guest runs on here", vm.Get(XenApi.VM.NameLabel),
                    state?.Status.ToString().ToLowerInvariant() ?? "unknown");
                await copy!.CancelMigrationAsync(cancellationToken);
                return;
        }
    }

    private async Task DeleteOldVolumesAsync(MigrationRecord record, CancellationToken cancellationToken)
    {
        foreach (var disk in record.Disks)
        {
            try
            {
                var (_, driver, directory) = await LocalSrAsync(disk.SourceSrRef, cancellationToken);
                await driver.DestroyAsync(directory, disk.SourceLocation, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Could not delete the old volume {Location} of a migrated disk", disk.SourceLocation);
            }
        }
    }

    private async Task RecordFiguresAsync(string taskRef, MigrationProgress state, CancellationToken cancellationToken)
    {
        try
        {
            await database.UpdateAsync([(XenClasses.Task, taskRef)], (objs, tx) =>
            {
                var t = objs[0].Clone();
                var other = t.Get(XenApi.Task.OtherConfig).ToDictionary();
                other["migration-downtime-ms"] = state.DowntimeMilliseconds.ToString(CultureInfo.InvariantCulture);
                other["migration-total-ms"] = state.TotalTimeMilliseconds.ToString(CultureInfo.InvariantCulture);
                other["migration-ram-bytes"] = state.TotalBytes.ToString(CultureInfo.InvariantCulture);
                t.Set(XenApi.Task.OtherConfig, other);
                tx.Update(t);
            }, cancellationToken);
        }
        catch (XenApiException)
        {
            // The caller already dropped its task.
        }
    }
}
