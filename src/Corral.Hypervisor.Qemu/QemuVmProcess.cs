using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// One QEMU process, started by us or adopted, driven over QMP, with the QEMU guest agent's port. QEMU is a daemon, not our
/// child: disposing this object lets go of it (the VM keeps running); only <see cref="KillAsync"/> stops it.
/// </summary>
public sealed class QemuVmProcess : IVmProcess
{
    private readonly VmRuntimePaths _paths;
    private readonly QmpClient _qmp;
    private readonly QgaGuestTools _qga;
    private volatile GuestAgentReport? _qgaReport;
    private readonly QemuOptions _options;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[]? _finalNvram;
    private byte[]? _finalTpmState;
    private readonly int? _swtpmPid;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _exitWatch;
    private readonly Action<QemuVmProcess>? _onReleased;
    private readonly QemuDevices _devices;
    private readonly QemuResize _resize;
    private int _disposed;
    private volatile bool _exitIntended;

    /// <param name="spec">What the process runs, every PCI device at its slot (<see cref="PciLayout.Assign"/>).</param>
    /// <param name="cacheMode">How disks plugged later use the host's page cache.</param>
    internal QemuVmProcess(VmLaunchSpec spec, int pid, VmRuntimePaths paths, QmpClient qmp, QemuOptions options, ILogger logger,
        Func<DiskSpec, DiskCacheMode> cacheMode, Action<QemuVmProcess>? onReleased = null)
    {
        _devices = new QemuDevices(spec, paths, qmp, cacheMode, logger, device => Raise(VmProcessEventKind.DeviceRemoved, device: device));
        ProcessId = pid;
        _paths = paths;
        _qmp = qmp;
        _options = options;
        _logger = logger;
        _onReleased = onReleased;
        _qmp.EventReceived += OnQmpEvent;
        // Every VM has the QEMU guest agent's port (QemuCommandLine); a guest without the agent stays silent on it.
        _qga = new QgaGuestTools(paths.Qga, spec.VmUuid, () => Spec.Nics, options.GuestAgentPollInterval, options.GuestAgentFreshness, logger);
        _qga.ReportReceived += (_, report) => _ = OnQgaReportAsync(report);
        _qga.Silenced += (_, _) => Raise(VmProcessEventKind.GuestAgentSilent);
        _resize = new QemuResize(_devices, qmp, _qga, logger);

        // The VM's swtpm, started with it (or found running beside it on adoption): the one to stop with it.
        _swtpmPid = spec.Tpm is null ? null : Swtpm.RunningPid(paths);
        _exitWatch = Task.Run(() => WatchExitAsync(_stop.Token));
    }

    public string VmUuid => Spec.VmUuid;

    public int ProcessId { get; }

    /// <summary>The devices the process has now: those it started with (read back from vm.json when adopted) and those plugged since.</summary>
    public VmLaunchSpec Spec => _devices.Spec;

    public VmRuntimePaths Paths => _paths;

    public Task Exited => _exited.Task;

    public bool ExitIntended => _exitIntended;

    /// <summary>The QEMU guest agent's side of this VM (every VM has its port; a guest without the agent never answers).</summary>
    internal QgaGuestTools Qga => _qga;

    /// <summary>What the QEMU guest agent last said (null while it never answered: the guest has no tools).</summary>
    public GuestAgentReport? LatestGuestReport => _qgaReport;

    /// <summary>True when the guest agent is connected and reported recently enough to be trusted with a shutdown.</summary>
    public bool GuestAgentResponsive => _qga.IsResponsive(_options.GuestAgentFreshness);

    /// <summary>
    /// A QEMU guest agent's report, with the paravirtual drivers the guest runs as the host sees them (the agent does
    /// not say): kept as the latest and raised as a guest report.
    /// </summary>
    private async Task OnQgaReportAsync(GuestAgentReport report)
    {
        try
        {
            var drivers = await VirtioDrivers.InUseAsync(QmpAsync, _stop.Token);
            _qgaReport = report with { PvDrivers = drivers };
            Raise(VmProcessEventKind.GuestReport);
        }
        catch (Exception ex) when (ex is QmpException or ObjectDisposedException or OperationCanceledException)
        {
            _logger.LogDebug("VM {Vm}: virtio driver status not read ({Reason})", VmUuid, ex.Message);
        }
    }

    /// <summary>The QMP connection, for callers that need a command the interface does not offer (e.g. migration).</summary>
    public QmpClient Qmp => _qmp;

    public event EventHandler<VmProcessEventArgs>? EventReceived;

    /// <summary>True while /proc/pid is a QEMU running this VM (a reused pid is not).</summary>
    public static bool IsAlive(int pid, string vmUuid) => VmProcessTable.IsRunningVm(pid, vmUuid);

    private void Raise(VmProcessEventKind kind, string detail = "", VmDevice? device = null)
    {
        try
        {
            EventReceived?.Invoke(this, new VmProcessEventArgs(kind, detail, device));
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A handler of VM {Vm}'s {Event} event failed", VmUuid, kind);
        }
    }

    /// <summary>How long an exit waits for QMP's reader to deliver the events QEMU wrote before it died.</summary>
    private static readonly TimeSpan QmpDrainTimeout = TimeSpan.FromSeconds(5);

    private async Task WatchExitAsync(CancellationToken stop)
    {
        try
        {
            // QMP's end is the prompt signal; /proc is the proof (and the only signal if QMP was lost some other way).
            for (var round = 1; VmProcessTable.IsRunningVm(ProcessId, VmUuid); round++)
            {
                var tick = _qmp.Closed.IsCompleted ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromSeconds(1);
                await Task.WhenAny(_qmp.Closed, Task.Delay(tick, stop));
                stop.ThrowIfCancellationRequested();
                if (round % 5 == 0)
                {
                    KeepConsoleLogBounded();
                }
            }
        }
        catch (OperationCanceledException)
        {
            return; // released, not exited
        }

        // The process is gone, so its end of QMP is closed; the reader may still be handing over its last events (a
        // guest's SHUTDOWN: whether the exit was meant). Closed completes only after it has (seen in CI: 8 ms late).
        await Task.WhenAny(_qmp.Closed, Task.Delay(QmpDrainTimeout, CancellationToken.None));
        _logger.LogInformation("QEMU process {Pid} of VM {Vm} has exited", ProcessId, VmUuid);
        await _qga.DisposeAsync();

        _finalNvram = ReadNvramFile();
        if (Spec.Tpm is not null)
        {
            // swtpm ends once QEMU's connection has gone; its state is read when it has.
            await Swtpm.StopAsync(_paths, _swtpmPid, _logger, TimeSpan.FromSeconds(5));
            _finalTpmState = ReadTpmStateFile();
        }

        RemoveRuntimeFiles(keepConsoleLog: true);
        _exited.TrySetResult();
        Raise(VmProcessEventKind.Exited);
    }

    public Task<byte[]?> ReadNvramAsync(CancellationToken cancellationToken) =>
        Task.FromResult(_exited.Task.IsCompleted ? _finalNvram : ReadNvramFile());

    public Task<byte[]?> ReadTpmStateAsync(CancellationToken cancellationToken) =>
        Task.FromResult(_exited.Task.IsCompleted ? _finalTpmState : ReadTpmStateFile());

    /// <summary>The vTPM's persistent state as swtpm wrote it; null for a VM without one, or when it cannot be read.</summary>
    private byte[]? ReadTpmStateFile()
    {
        if (Spec.Tpm is null)
        {
            return null;
        }

        try
        {
            return Swtpm.ReadState(_paths);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("VM {Vm}: could not read its vTPM's state: {Reason}", VmUuid, ex.Message);
            return null;
        }
    }

    /// <summary>The variable store QEMU writes through to; null for a BIOS VM or when it cannot be read.</summary>
    private byte[]? ReadNvramFile()
    {
        if (Spec.Uefi is null)
        {
            return null;
        }

        try
        {
            return File.ReadAllBytes(_paths.Nvram);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("VM {Vm}: could not read its UEFI variable store: {Reason}", VmUuid, ex.Message);
            return null;
        }
    }

    private void KeepConsoleLogBounded()
    {
        try
        {
            if (ConsoleLogFile.KeepBounded(_paths.ConsoleLog, _options.ConsoleLogMaxBytes))
            {
                _logger.LogInformation("VM {Vm}: serial console log past {Bytes} bytes, set aside and started afresh", VmUuid, _options.ConsoleLogMaxBytes);
            }
        }
        catch (IOException ex)
        {
            _logger.LogWarning("VM {Vm}: could not bound the serial console log: {Reason}", VmUuid, ex.Message);
        }
    }

    /// <summary>
    /// Removes what a dead QEMU left behind (sockets, pidfile, vm.json), unless the directory already belongs to a newer
    /// process of the same VM (its pidfile names another pid).
    /// </summary>
    private void RemoveRuntimeFiles(bool keepConsoleLog)
    {
        try
        {
            if (VmProcessTable.ReadPidFile(_paths.PidFile) is { } pid && pid != ProcessId)
            {
                return;
            }

            if (!keepConsoleLog)
            {
                Directory.Delete(_paths.Directory, recursive: true);
                return;
            }

            foreach (var file in _paths.Sockets.Append(_paths.PidFile).Append(_paths.Spec).Append(_paths.Nvram).Append(_paths.TpmPidFile))
            {
                File.Delete(file);
            }

            if (Directory.Exists(_paths.Tls))
            {
                Directory.Delete(_paths.Tls, recursive: true);
            }

            if (Directory.Exists(_paths.TpmState) && Swtpm.RunningPid(_paths) is null)
            {
                Directory.Delete(_paths.TpmState, recursive: true);
            }
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Could not clean the runtime directory {Directory}", _paths.Directory);
        }
    }

    private void OnQmpEvent(object? sender, QmpEventArgs e)
    {
        _logger.LogDebug("VM {Vm}: QMP event {Event} {Data}", VmUuid, e.Name, e.Data?.ToJsonString());
        if (e.Name == "SHUTDOWN" && e.Data?["reason"]?.GetValue<string>() is "guest-shutdown" or "host-qmp-quit")
        {
            // The guest powered itself off, or Corral quit it; a signal from someone else (host-signal) is not meant.
            _exitIntended = true;
        }

        if (e.Name == "DEVICE_DELETED")
        {
            _devices.OnDeviceDeleted(e.Data);
        }

        VmProcessEventKind? kind = e.Name switch
        {
            "SHUTDOWN" => VmProcessEventKind.GuestShutdown,
            "RESET" => VmProcessEventKind.GuestReset,
            "STOP" => VmProcessEventKind.Stopped,
            "RESUME" => VmProcessEventKind.Resumed,
            _ => null,
        };
        if (kind is { } k)
        {
            Raise(k, e.Data?.ToJsonString() ?? "");
        }
    }

    private async Task<JsonNode?> QmpAsync(string command, JsonObject? arguments, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return await _qmp.ExecuteAsync(command, arguments, cancellationToken);
    }

    public async Task<VmRunState> QueryStateAsync(CancellationToken cancellationToken)
    {
        var status = await QmpAsync("query-status", null, cancellationToken);
        return MapRunState(status?["status"]?.GetValue<string>());
    }

    public async Task<IReadOnlyList<DiskIoCounters>> QueryDiskIoAsync(CancellationToken cancellationToken) =>
        ParseBlockStats(await QmpAsync("query-blockstats", null, cancellationToken));

    /// <summary>QMP <c>query-blockstats</c>' rd_bytes and wr_bytes of the drives Corral named (<c>drive&lt;index&gt;</c>).</summary>
    public static IReadOnlyList<DiskIoCounters> ParseBlockStats(JsonNode? reply)
    {
        var result = new List<DiskIoCounters>();
        foreach (var entry in (reply as JsonArray ?? []).OfType<JsonObject>())
        {
            if (DiskIndexOf(entry) is not { } index || entry["stats"] is not JsonObject stats)
            {
                continue;
            }

            result.Add(new DiskIoCounters(index, stats["rd_bytes"]?.GetValue<long>() ?? 0, stats["wr_bytes"]?.GetValue<long>() ?? 0));
        }

        return result;
    }

    /// <summary>
    /// The disk a query-blockstats entry is about: a drive from the command line by its name (<c>drive&lt;index&gt;</c>),
    /// a disk plugged later (an anonymous block backend) by its device (<c>/machine/peripheral/vbd&lt;index&gt;/...</c>).
    /// </summary>
    private static int? DiskIndexOf(JsonObject entry)
    {
        // The number after the prefix, up to the next '/'.
        static int? After(string text, string prefix)
        {
            if (!text.StartsWith(prefix, StringComparison.Ordinal))
            {
                return null;
            }

            var rest = text[prefix.Length..];
            var stop = rest.IndexOf('/', StringComparison.Ordinal);
            return int.TryParse(stop < 0 ? rest : rest[..stop], NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? index : null;
        }

        var device = entry["device"]?.GetValue<string>() ?? "";
        return device.Length > 0
            ? After(device, "drive")
            : After(entry["qdev"]?.GetValue<string>() ?? "", "/machine/peripheral/vbd");
    }

    /// <summary>QEMU's RunState (query-status) folded to what Corral distinguishes.</summary>
    public static VmRunState MapRunState(string? status) => status switch
    {
        "running" => VmRunState.Running,
        "paused" or "prelaunch" or "inmigrate" or "suspended" or "debug" or "save-vm" or "restore-vm" => VmRunState.Paused,
        "postmigrate" or "finish-migrate" => VmRunState.Migrating,
        "shutdown" => VmRunState.ShutDown,
        "internal-error" or "guest-panicked" or "io-error" => VmRunState.Crashed,
        _ => VmRunState.Unknown,
    };

    public Task PauseAsync(CancellationToken cancellationToken) => QmpAsync("stop", null, cancellationToken);

    public async Task StartMigrationAsync(string destinationUri, MigrationTuning tuning, CancellationToken cancellationToken)
    {
        var capabilities = new JsonArray
        {
            new JsonObject { ["capability"] = "auto-converge", ["state"] = tuning.AutoConverge },
            new JsonObject { ["capability"] = "events", ["state"] = true },
            new JsonObject { ["capability"] = "pause-before-switchover", ["state"] = true },
        };
        await QmpAsync("migrate-set-capabilities", new JsonObject { ["capabilities"] = capabilities }, cancellationToken);
        var parameters = new JsonObject
        {
            ["downtime-limit"] = (long)tuning.DowntimeLimit.TotalMilliseconds,
            // Bytes per second. QEMU's default (128 MiB/s) would throttle a migration over a fast link, so "unlimited"
            // is 10 GiB/s; QEMU refuses figures near the range of its size type.
            ["max-bandwidth"] = tuning.MaxBandwidthBytesPerSecond > 0 ? tuning.MaxBandwidthBytesPerSecond : 10L << 30,
            // TLS with the pool's certificates when this host has them ("" is plain TCP), the destination checked for
            // the address in the URI.
            ["tls-creds"] = await QemuTlsCredentials.ClientAsync(_qmp, _paths, _options, _logger, VmUuid, cancellationToken) ?? "",
        };
        await QmpAsync("migrate-set-parameters", parameters, cancellationToken);
        await QmpAsync("migrate", new JsonObject { ["uri"] = destinationUri }, cancellationToken);
    }

    public async Task<MigrationProgress> QueryMigrationAsync(CancellationToken cancellationToken)
    {
        var info = await QmpAsync("query-migrate", null, cancellationToken) as JsonObject ?? [];
        var status = info["status"]?.GetValue<string>() switch
        {
            null => MigrationStatus.None,
            "none" => MigrationStatus.None,
            "setup" => MigrationStatus.Setup,
            "active" or "device" or "postcopy-active" => MigrationStatus.Active,
            "pre-switchover" => MigrationStatus.PreSwitchover,
            "completed" => MigrationStatus.Completed,
            "failed" => MigrationStatus.Failed,
            "cancelled" or "cancelling" => MigrationStatus.Cancelled,
            _ => MigrationStatus.Other,
        };
        var ram = info["ram"] as JsonObject;
        if (status == MigrationStatus.Completed && ram is null)
        {
            // QEMU reports the incoming migration when no outgoing one has begun: a VM that came in by migration says
            // "completed" with no figures. This process has sent nothing (an agent restarted between recording its
            // migration and asking QEMU to migrate had taken that for a migration sent, and committed it).
            status = MigrationStatus.None;
        }

        return new MigrationProgress(status,
            ram?["total"]?.GetValue<long>() ?? 0,
            ram?["transferred"]?.GetValue<long>() ?? 0,
            ram?["remaining"]?.GetValue<long>() ?? 0,
            info["downtime"]?.GetValue<long>() ?? 0,
            info["total-time"]?.GetValue<long>() ?? 0,
            info["error-desc"]?.GetValue<string>());
    }

    public async Task<Stream> OpenConsoleAsync(VmConsoleKind kind, CancellationToken cancellationToken)
    {
        var path = kind == VmConsoleKind.Serial ? _paths.Console : _paths.Vnc;
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task<byte[]> ReadSerialConsoleTailAsync(int maxBytes, CancellationToken cancellationToken) =>
        ConsoleLogFile.ReadTailAsync(_paths.ConsoleLog, maxBytes, cancellationToken);

    public Task CancelMigrationAsync(CancellationToken cancellationToken) => QmpAsync("migrate_cancel", null, cancellationToken);

    public Task ContinueMigrationAsync(CancellationToken cancellationToken) =>
        QmpAsync("migrate-continue", new JsonObject { ["state"] = "pre-switchover" }, cancellationToken);

    public async Task ExportDisksAsync(string host, int port, IReadOnlyList<int> diskIndexes, CancellationToken cancellationToken)
    {
        var address = new JsonObject
        {
            ["type"] = "inet",
            ["data"] = new JsonObject { ["host"] = host, ["port"] = port.ToString(CultureInfo.InvariantCulture) },
        };
        var server = new JsonObject { ["addr"] = address };
        QemuTlsCredentials.AddToNbdServer(server, Spec);
        await QmpAsync("nbd-server-start", server, cancellationToken);
        foreach (var index in diskIndexes)
        {
            // Writable although the VM's disks stay inactive until the migration ends: QEMU allows an NBD export to
            // write to an incoming VM's disk for exactly this.
            await QmpAsync("nbd-server-add", new JsonObject { ["device"] = QemuCommandLine.DriveId(index), ["writable"] = true }, cancellationToken);
        }
    }

    public async Task StopDiskExportAsync(CancellationToken cancellationToken)
    {
        try
        {
            await QmpAsync("nbd-server-stop", null, cancellationToken);
        }
        catch (QmpException ex) when (ex.ErrorClass == "GenericError")
        {
            // Not running (already stopped by an earlier attempt): what was asked is true.
        }
    }

    private static string MirrorJobId(int diskIndex) => "mirror-" + QemuCommandLine.DriveId(diskIndex);

    public async Task StartDiskMirrorAsync(int diskIndex, string nbdHost, int nbdPort, CancellationToken cancellationToken) =>
        await QmpAsync("drive-mirror", new JsonObject
        {
            ["job-id"] = MirrorJobId(diskIndex),
            ["device"] = QemuCommandLine.DriveId(diskIndex),
            ["target"] = QemuTlsCredentials.NbdTarget(nbdHost, nbdPort, QemuCommandLine.DriveId(diskIndex),
                await QemuTlsCredentials.ClientAsync(_qmp, _paths, _options, _logger, VmUuid, cancellationToken)),
            // The export is the destination's image as its guest would see it: raw over NBD, whatever the file's format.
            ["format"] = "raw",
            ["mode"] = "existing",
            ["sync"] = "full",
            // Kept after it ends, so that its outcome (and error) can be read rather than guessed from its absence.
            ["auto-dismiss"] = false,
        }, cancellationToken);

    public async Task<IReadOnlyList<DiskMirrorState>> QueryDiskMirrorsAsync(CancellationToken cancellationToken)
    {
        var blockJobs = await QmpAsync("query-block-jobs", null, cancellationToken) as JsonArray ?? [];
        var jobs = await QmpAsync("query-jobs", null, cancellationToken) as JsonArray ?? [];
        var mirrors = new List<DiskMirrorState>();
        foreach (var job in jobs.OfType<JsonObject>())
        {
            var id = job["id"]?.GetValue<string>() ?? "";
            if (!id.StartsWith("mirror-drive", StringComparison.Ordinal)
                || !int.TryParse(id["mirror-drive".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                continue;
            }

            var block = blockJobs.OfType<JsonObject>().FirstOrDefault(b => b["device"]?.GetValue<string>() == id);
            var status = job["status"]?.GetValue<string>();
            var error = job["error"]?.GetValue<string>();
            mirrors.Add(new DiskMirrorState(index,
                job["total-progress"]?.GetValue<long>() ?? 0,
                job["current-progress"]?.GetValue<long>() ?? 0,
                block?["ready"]?.GetValue<bool>() ?? status == "ready",
                error is not null || status == "aborting",
                error));
        }

        return mirrors;
    }

    public async Task CompleteDiskMirrorsAsync(CancellationToken cancellationToken)
    {
        var mirrors = await QueryDiskMirrorsAsync(cancellationToken);
        foreach (var mirror in mirrors.Where(m => m is { Ready: true, Failed: false }))
        {
            // On a mirror that has caught up, block-job-cancel is the clean ending: it flushes the last writes and
            // leaves the target a complete copy (block-job-complete would instead switch this VM onto the target).
            await QmpAsync("block-job-cancel", new JsonObject { ["device"] = MirrorJobId(mirror.DiskIndex) }, cancellationToken);
        }

        var failures = new List<string>();
        foreach (var mirror in mirrors)
        {
            var id = MirrorJobId(mirror.DiskIndex);
            while (true)
            {
                var jobs = await QmpAsync("query-jobs", null, cancellationToken) as JsonArray ?? [];
                var job = jobs.OfType<JsonObject>().FirstOrDefault(j => j["id"]?.GetValue<string>() == id);
                if (job is null)
                {
                    failures.Add($"{id}: the job vanished");
                    break;
                }

                if (job["status"]?.GetValue<string>() == "concluded")
                {
                    if (!mirror.Ready || job["error"]?.GetValue<string>() is { } error)
                    {
                        failures.Add($"{id}: {job["error"]?.GetValue<string>() ?? "it had not caught up"}");
                    }

                    await QmpAsync("job-dismiss", new JsonObject { ["id"] = id }, cancellationToken);
                    break;
                }

                await Task.Delay(5, cancellationToken);
            }
        }

        if (failures.Count > 0)
        {
            throw new DiskMirrorException("disk mirror failed: " + string.Join("; ", failures));
        }
    }

    public async Task AbandonDiskMirrorsAsync(CancellationToken cancellationToken)
    {
        foreach (var mirror in await QueryDiskMirrorsAsync(cancellationToken))
        {
            var id = MirrorJobId(mirror.DiskIndex);
            try
            {
                await QmpAsync("block-job-cancel", new JsonObject { ["device"] = id, ["force"] = true }, cancellationToken);
            }
            catch (QmpException)
            {
                // Already ended: only the dismissal is left.
            }

            for (var i = 0; i < 400; i++)
            {
                var jobs = await QmpAsync("query-jobs", null, cancellationToken) as JsonArray ?? [];
                var job = jobs.OfType<JsonObject>().FirstOrDefault(j => j["id"]?.GetValue<string>() == id);
                if (job is null)
                {
                    break;
                }

                if (job["status"]?.GetValue<string>() == "concluded")
                {
                    await QmpAsync("job-dismiss", new JsonObject { ["id"] = id }, cancellationToken);
                    break;
                }

                await Task.Delay(5, cancellationToken);
            }
        }
    }

    public Task ResumeAsync(CancellationToken cancellationToken) => QmpAsync("cont", null, cancellationToken);

    public Task BackupDisksAsync(IReadOnlyList<DiskBackupTarget> targets, bool quiesce, CancellationToken cancellationToken) =>
        new QemuDiskBackup(_qmp, _qga, _options.GuestAgentFreshness, _logger).BackupAsync(targets, quiesce, cancellationToken);

    public Task AbandonDiskBackupsAsync(CancellationToken cancellationToken) =>
        new QemuDiskBackup(_qmp, _qga, _options.GuestAgentFreshness, _logger).AbandonAsync(cancellationToken);

    /// <summary>The guest agent's <c>shutdown</c> when it is alive and acknowledges; otherwise the ACPI power button.</summary>
    public async Task RequestShutdownAsync(CancellationToken cancellationToken)
    {
        _exitIntended = true;
        if (await AskQgaAsync("powerdown", cancellationToken))
        {
            return;
        }

        _logger.LogInformation("VM {Vm}: ACPI power button (system_powerdown)", VmUuid);
        await QmpAsync("system_powerdown", null, cancellationToken);
    }

    /// <summary>The guest agent's <c>reboot</c> when it is alive and acknowledges; otherwise a hard reset.</summary>
    public async Task RequestRebootAsync(CancellationToken cancellationToken)
    {
        if (await AskQgaAsync("reboot", cancellationToken))
        {
            return;
        }

        _logger.LogInformation("VM {Vm}: no guest agent to reboot cleanly; resetting (system_reset)", VmUuid);
        await QmpAsync("system_reset", null, cancellationToken);
    }

    /// <summary>The QEMU guest agent's <c>guest-shutdown</c> in <paramref name="mode"/>, when it is alive and has it enabled.</summary>
    private async Task<bool> AskQgaAsync(string mode, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (!await _qga.ShutdownAsync(mode, _options.GuestAgentFreshness, cancellationToken))
        {
            return false;
        }

        _logger.LogInformation("VM {Vm}: QEMU guest agent asked to {Mode}", VmUuid, mode);
        return true;
    }

    public Task ResetAsync(CancellationToken cancellationToken) => QmpAsync("system_reset", null, cancellationToken);

    /// <summary>QMP <c>quit</c>; SIGKILL (to this VM's QEMU only, checked in /proc) if it lingers; then the runtime directory goes.</summary>
    public async Task KillAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _exitIntended = true;
        if (!_exited.Task.IsCompleted)
        {
            try
            {
                await _qmp.ExecuteAsync("quit", null, cancellationToken).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (Exception ex) when (ex is QmpException or TimeoutException)
            {
                _logger.LogInformation("VM {Vm}: QMP quit not answered ({Reason})", VmUuid, ex.Message);
            }

            try
            {
                await _exited.Task.WaitAsync(_options.QuitGracePeriod, cancellationToken);
            }
            catch (TimeoutException)
            {
                _logger.LogWarning("VM {Vm}: QEMU {Pid} still runs {Seconds} s after quit; sending SIGKILL", VmUuid, ProcessId,
                    _options.QuitGracePeriod.TotalSeconds);
                VmProcessTable.KillVm(ProcessId, VmUuid);
                await _exited.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
            }
        }

        RemoveRuntimeFiles(keepConsoleLog: false);
    }

    public void KillImmediately()
    {
        // Not an intended exit: the VM was fenced, not stopped, and HA restarts it if it protects it.
        if (!_exited.Task.IsCompleted)
        {
            VmProcessTable.KillVm(ProcessId, VmUuid);
        }
    }

    /// <summary>Inserts an image into (path) or ejects the medium of (null) the CD drive with this VBD index.</summary>
    public async Task ChangeMediumAsync(int diskIndex, string? isoPath, CancellationToken cancellationToken)
    {
        var disk = Spec.Disks.FirstOrDefault(d => d.Index == diskIndex);
        if (disk is not { IsCdrom: true })
        {
            throw new ArgumentException($"VM {VmUuid} has no CD drive at index {diskIndex}", nameof(diskIndex));
        }

        if (isoPath is not null && !Path.IsPathFullyQualified(isoPath))
        {
            throw new ArgumentException($"'{isoPath}' is not an absolute path", nameof(isoPath));
        }

        var id = QemuCommandLine.DriveId(diskIndex);
        if (isoPath is null)
        {
            await QmpAsync("eject", new JsonObject { ["device"] = id, ["force"] = true }, cancellationToken);
            return;
        }

        await QmpAsync("blockdev-change-medium", new JsonObject
        {
            ["device"] = id,
            ["filename"] = isoPath,
            ["format"] = "raw",
            ["read-only-mode"] = "read-only",
        }, cancellationToken);
    }

    public Task<DiskSpec> AttachDiskAsync(DiskSpec disk, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _devices.AttachDiskAsync(disk, cancellationToken);
    }

    public Task<bool> DetachDiskAsync(int diskIndex, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _devices.DetachAsync(new VmDevice(VmDeviceKind.Disk, diskIndex), timeout, cancellationToken);
    }

    public Task<NicSpec> AttachNicAsync(NicSpec nic, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _devices.AttachNicAsync(nic, cancellationToken);
    }

    public Task<bool> DetachNicAsync(int nicIndex, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _devices.DetachAsync(new VmDevice(VmDeviceKind.Nic, nicIndex), timeout, cancellationToken);
    }

    public Task<int> SetVcpusAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _resize.SetVcpusAsync(count, timeout, cancellationToken);
    }

    public Task SetMemoryTargetAsync(long bytes, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _resize.SetMemoryTargetAsync(bytes, cancellationToken);
    }

    public Task<long?> QueryMemoryActualAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _resize.QueryMemoryActualAsync(cancellationToken);
    }

    public Task<long> ResizeDiskAsync(int diskIndex, long bytes, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _resize.ResizeDiskAsync(diskIndex, bytes, cancellationToken);
    }

    /// <summary>Lets go of the process: QMP and guest agent connections close, QEMU keeps running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        _qmp.EventReceived -= OnQmpEvent;
        await _qga.DisposeAsync();

        await _qmp.DisposeAsync();
        _devices.Dispose();
        await _exitWatch;
        _stop.Dispose();
        _onReleased?.Invoke(this);
    }
}
