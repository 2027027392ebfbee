using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// What Corral's switchover (SwitchoverSteps) relies on in QEMU: a migration held at pre-switchover goes on after one
/// <c>migrate-continue</c>; once it has completed, a second one is refused ("Migration not in expected state:
/// completed", the message seen in the lab when the source sent it twice) and a <c>migrate_cancel</c> changes nothing:
/// the source's guest stays stopped, the destination's runs. A cancel while QEMU still holds at pre-switchover, on the
/// other hand, resumes the guest on the source and leaves the destination without it.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class SwitchoverTests(ITestOutputHelper output)
{
    [GuestImageFact]
    public async Task After_the_switchover_completes_a_second_go_ahead_is_refused_and_a_cancel_resumes_nothing()
    {
        await using var rig = new QemuRig(output);
        var (sender, receiver) = await HeldAtPreSwitchoverAsync(rig);

        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.Completed, "completed");
        var refused = await Assert.ThrowsAsync<QmpException>(() => sender.ContinueMigrationAsync(CancellationToken.None));
        Assert.Contains("not in expected state: completed", refused.Message, StringComparison.Ordinal);

        await sender.CancelMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest");
        await Task.Delay(500);
        Assert.Equal(MigrationStatus.Completed, (await sender.QueryMigrationAsync(CancellationToken.None)).Status);
        Assert.Equal(VmRunState.Migrating, await sender.QueryStateAsync(CancellationToken.None)); // postmigrate: stopped for good

        // The receiver has sent nothing: QEMU's "completed" there is its incoming migration's, which is not one it sent.
        Assert.Equal(MigrationStatus.None, (await receiver.QueryMigrationAsync(CancellationToken.None)).Status);
    }

    [GuestImageFact]
    public async Task A_cancel_at_pre_switchover_resumes_the_guest_on_the_source_only()
    {
        await using var rig = new QemuRig(output);
        var (sender, receiver) = await HeldAtPreSwitchoverAsync(rig);

        await sender.CancelMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await sender.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the source to resume the guest");
        Assert.Equal(MigrationStatus.Cancelled, (await sender.QueryMigrationAsync(CancellationToken.None)).Status);
        await Task.Delay(500);
        Assert.False(await RunsGuestAsync(receiver), "the destination runs the guest too");
    }

    private static async Task<(QemuVmProcess Sender, QemuVmProcess Receiver)> HeldAtPreSwitchoverAsync(QemuRig rig)
    {
        var source = rig.NewHypervisor();
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms-dest"));
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        var port = QemuRig.FreePort();
        var receiver = (QemuVmProcess)await destination.StartAsync(spec with { IncomingMigration = $"tcp:127.0.0.1:{port}" }, CancellationToken.None);
        await sender.StartMigrationAsync($"tcp:127.0.0.1:{port}", MigrationTuning.Default, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover");
        return (sender, receiver);
    }

    /// <summary>Whether the process runs the guest; an incoming QEMU whose stream broke may have exited (it does not then).</summary>
    private static async Task<bool> RunsGuestAsync(QemuVmProcess process)
    {
        try
        {
            return await process.QueryStateAsync(CancellationToken.None) == VmRunState.Running;
        }
        catch (QmpDisconnectedException)
        {
            return false;
        }
    }
}
