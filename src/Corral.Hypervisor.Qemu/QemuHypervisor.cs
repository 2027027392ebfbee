using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Corral.Platform;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Runs VMs as daemonized QEMU processes (<c>-daemonize</c>: QEMU double-forks and detaches into its own session), so they
/// outlive the agent that started them; a restarted agent finds them again through their runtime directories
/// (<see cref="AdoptRunningAsync"/>). Disposing the hypervisor lets go of its VMs without stopping them.
/// </summary>
public sealed class QemuHypervisor : IHypervisor, IDisposable, IAsyncDisposable
{
    private static readonly TimeSpan MonitorTimeout = TimeSpan.FromSeconds(10);

    private readonly QemuOptions _options;
    private readonly ILogger<QemuHypervisor> _logger;
    private readonly SemaphoreSlim _probeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, QemuVmProcess> _live = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _busy = new(StringComparer.OrdinalIgnoreCase);
    private volatile AcceleratorChoice? _accelerator;
    private static readonly EventId DirtySyncWorkaround = new(2101, "QemuDirtySyncWorkaround");
    private Version? _qemuVersion;
    private int _dirtySyncNoted;
    private int _disposed;

    private readonly IVmLeaseLauncher? _leases;

    public QemuHypervisor(IOptions<QemuOptions> options, ILogger<QemuHypervisor> logger, IVmLeaseLauncher? leases = null)
    {
        _options = options.Value;
        _logger = logger;
        _leases = leases;
    }

    /// <summary>The runtime directory, made absolute (QEMU changes to / once it is a daemon).</summary>
    private string RuntimeRoot => Path.GetFullPath(_options.RuntimeDirectory);

    /// <summary>The version of <see cref="QemuOptions.QemuBinary"/> (<c>--version</c>'s first line), read once.</summary>
    private async Task<Version> GetQemuVersionAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _qemuVersion) is { } known)
        {
            return known;
        }

        var said = await CommandRunner.RunCheckedAsync(_options.QemuBinary, ["--version"], cancellationToken, TimeSpan.FromSeconds(30));
        var version = QemuCommandLine.ParseVersion(said)
                      ?? throw new VmStartException($"{_options.QemuBinary} --version gave no version: {said.Split('\n')[0].Trim()}");
        _logger.LogInformation("QEMU {Version} ({Binary})", version, _options.QemuBinary);
        Volatile.Write(ref _qemuVersion, version);
        return version;
    }

    public async Task<AcceleratorChoice> GetAcceleratorAsync(CancellationToken cancellationToken)
    {
        if (_accelerator is { } known)
        {
            return known;
        }

        await _probeLock.WaitAsync(cancellationToken);
        try
        {
            return _accelerator ??= await new AcceleratorProbe(_options, _logger).DecideAsync(cancellationToken);
        }
        finally
        {
            _probeLock.Release();
        }
    }

    /// <summary>Runs QEMU with <c>-daemonize</c>: the parent returns once the daemon has initialized (disks open, sockets bound) or failed to.</summary>
    private async Task<int> LaunchDaemonAsync(IReadOnlyList<string> arguments, VmRuntimePaths paths, CancellationToken cancellationToken)
    {
        CommandResult result;
        try
        {
            result = await CommandRunner.RunAsync(_options.QemuBinary, arguments, cancellationToken, _options.StartTimeout);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new VmStartException($"QEMU did not finish initializing within {_options.StartTimeout.TotalSeconds} s");
        }

        if (!result.Succeeded)
        {
            var message = result.StandardError.Trim();
            throw new VmStartException(string.IsNullOrEmpty(message) ? $"QEMU exited with {result.ExitCode}" : message);
        }

        return VmProcessTable.ReadPidFile(paths.PidFile) ?? throw new VmStartException($"QEMU reported success but wrote no pid to {paths.PidFile}");
    }

    private LeasedCommand LeasedCommandFor(VmLease lease, IReadOnlyList<string> arguments)
    {
        var launcher = _leases ?? throw new VmStartException("the VM has a lease on shared storage, but leases are off on this host");
        return launcher.Wrap(lease, LeasedLauncher.ResolveProgram(_options.QemuBinary), arguments);
    }

    /// <summary>
    /// A UEFI VM's variable store in its runtime directory: the one it last left, or the firmware's empty one (with the
    /// Secure Boot keys enrolled, for a Secure Boot VM).
    /// </summary>
    private async Task WriteNvramAsync(VmLaunchSpec spec, VmRuntimePaths paths, CancellationToken cancellationToken)
    {
        if (spec.Uefi is not { } uefi)
        {
            return;
        }

        var template = uefi.SecureBoot ? _options.OvmfSecureBootVars : _options.OvmfVars;
        if (!File.Exists(_options.OvmfCode) || !File.Exists(template))
        {
            throw new VmStartException($"the VM boots UEFI, and this host has no UEFI firmware ({_options.OvmfCode}, {template}: Debian's ovmf package)");
        }

        var empty = await File.ReadAllBytesAsync(template, cancellationToken);
        if (uefi.Variables is { } variables && variables.Length != empty.Length)
        {
            throw new VmStartException($"the VM's UEFI variable store is {variables.Length} bytes; this host's firmware takes {empty.Length}");
        }

        await File.WriteAllBytesAsync(paths.Nvram, uefi.Variables ?? empty, cancellationToken);
    }

    public async Task<IVmProcess> StartAsync(VmLaunchSpec spec, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        QemuCommandLine.Validate(spec);
        // Every PCI device at an explicit slot, recorded in vm.json, so that devices plugged later and a migration's
        // destination agree with QEMU on the bus.
        spec = PciLayout.Assign(spec);
        var paths = new VmRuntimePaths(Path.Combine(RuntimeRoot, spec.VmUuid));
        paths.EnsureSocketPathsFit();
        if (_live.TryGetValue(spec.VmUuid, out var running) && !running.Exited.IsCompleted)
        {
            throw new VmStartException($"VM {spec.VmUuid} already runs here (QEMU pid {running.ProcessId})");
        }

        if (!_busy.TryAdd(spec.VmUuid, 0))
        {
            throw new VmStartException($"VM {spec.VmUuid} is already being started or adopted");
        }

        try
        {
            return await StartLockedAsync(spec, paths, cancellationToken);
        }
        finally
        {
            _busy.TryRemove(spec.VmUuid, out _);
        }
    }

    private async Task<IVmProcess> StartLockedAsync(VmLaunchSpec spec, VmRuntimePaths paths, CancellationToken cancellationToken)
    {
        if (VmProcessTable.ReadPidFile(paths.PidFile) is { } existing && VmProcessTable.IsRunningVm(existing, spec.VmUuid))
        {
            // Started by an earlier agent and not adopted: a second QEMU on the same disks would corrupt them.
            throw new VmStartException($"a QEMU process ({existing}) already runs VM {spec.VmUuid}; adopt it instead of starting another");
        }

        var accelerator = (await GetAcceleratorAsync(cancellationToken)).Name;
        spec = QemuTlsCredentials.ForIncoming(spec, _options, _logger);
        if (Directory.Exists(paths.Directory))
        {
            Directory.Delete(paths.Directory, recursive: true);
        }

        QemuSecrets.CreateDirectory(paths);
        var watch = Stopwatch.StartNew();
        try
        {
            await File.WriteAllTextAsync(paths.Spec, JsonSerializer.Serialize(spec), cancellationToken);
            QemuSecrets.Write(spec, paths);
            var version = await GetQemuVersionAsync(cancellationToken);
            if (QemuCommandLine.NeedsPageByPageDirtySync(accelerator, version) && Interlocked.Exchange(ref _dirtySyncNoted, 1) == 0)
            {
                _logger.LogWarning(DirtySyncWorkaround,
                    "QEMU {Version} under TCG loses guest writes in live migration when a guest's RAM is a multiple of 256 KiB (fixed in QEMU 9.0): " +
                    "guests get 8 KiB less than whole MiB, which QEMU syncs page by page", version);
            }

            await WriteNvramAsync(spec, paths, cancellationToken);
            if (spec.Tpm is { } tpm)
            {
                await Swtpm.StartAsync(tpm, paths, _options, _logger, cancellationToken);
            }

            var tls = QemuTlsCredentials.IncomingArguments(spec, paths, _options);
            var arguments = QemuCommandLine.Build(spec, paths, accelerator, CacheModeFor, [.. tls, .. _options.ExtraArgs], version, _options.OvmfCode);
            _logger.LogInformation("Starting VM {Name} ({Uuid}) under {Accelerator}: {CommandLine}", spec.Name, spec.VmUuid, accelerator,
                CommandRunner.Describe(_options.QemuBinary, arguments));

            var pid = spec.Lease is { } lease
                ? await LeasedLauncher.LaunchAsync(_leases!, LeasedCommandFor(lease, arguments), paths, _options.StartTimeout, cancellationToken)
                : await LaunchDaemonAsync(arguments, paths, cancellationToken);
            if (!VmProcessTable.IsRunningVm(pid, spec.VmUuid))
            {
                throw new VmStartException($"QEMU (pid {pid}) exited right after starting{LeasedLauncher.Said(paths, _leases)}");
            }

            var qmp = await ConnectMonitorAsync(paths, pid, spec.VmUuid, cancellationToken);
            var process = Track(new QemuVmProcess(spec, pid, paths, qmp, _options, _logger, CacheModeFor, Release));
            var state = await process.QueryStateAsync(cancellationToken);
            var expected = spec.IncomingMigration is null ? VmRunState.Running : VmRunState.Paused;
            if (state != expected)
            {
                await process.KillAsync(CancellationToken.None);
                await process.DisposeAsync();
                throw new VmStartException($"QEMU started but the VM is {state}, not {expected}");
            }

            if (spec.IncomingMigration is not null)
            {
                // The destination announces the VM's MACs (RARP, or the guest's gratuitous ARP) as soon as it runs,
                // rather than after QEMU's default 50 ms: until then switches send its traffic to the old host.
                await qmp.ExecuteAsync("migrate-set-parameters", new System.Text.Json.Nodes.JsonObject
                {
                    ["announce-initial"] = 0,
                    ["announce-step"] = 50,
                    ["announce-rounds"] = 5,
                }, cancellationToken);
            }

            _logger.LogInformation("VM {Name} ({Uuid}) started: QEMU pid {Pid}, {Milliseconds} ms", spec.Name, spec.VmUuid, pid, watch.ElapsedMilliseconds);
            return process;
        }
        catch (Exception ex)
        {
            // Whatever failed, no half-started QEMU and no stale runtime directory stay behind.
            var said = LeasedLauncher.Said(paths, _leases);
            if (_live.TryGetValue(spec.VmUuid, out var tracked))
            {
                await tracked.DisposeAsync();
            }

            if (VmProcessTable.ReadPidFile(paths.PidFile) is { } pid && VmProcessTable.KillVm(pid, spec.VmUuid))
            {
                _logger.LogWarning("Killed QEMU {Pid} of VM {Uuid} after a failed start", pid, spec.VmUuid);
                for (var i = 0; i < 100 && VmProcessTable.IsRunningVm(pid, spec.VmUuid); i++)
                {
                    await Task.Delay(50, CancellationToken.None);
                }
            }

            if (spec.Tpm is not null)
            {
                // QEMU never ran, or has gone: its swtpm goes too.
                await Swtpm.StopAsync(paths, Swtpm.RunningPid(paths), _logger, TimeSpan.Zero);
            }

            TryDelete(paths.Directory);
            if (ex is VmStartException or OperationCanceledException)
            {
                throw;
            }

            throw new VmStartException($"QEMU started but its monitor did not answer: {ex.Message}{said}", ex);
        }
    }

    /// <summary>
    /// The new QEMU's monitor. QEMU makes its socket (bind) a moment before it listens on it, so a connection refused
    /// in between, more likely on a busy host, is tried again while the QEMU runs, for up to <see cref="MonitorTimeout"/>.
    /// </summary>
    private async Task<QmpClient> ConnectMonitorAsync(VmRuntimePaths paths, int pid, string vmUuid, CancellationToken cancellationToken)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await QmpClient.ConnectAsync(paths.Qmp, cancellationToken, MonitorTimeout, _logger);
            }
            catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused
                                                                 && waited.Elapsed < MonitorTimeout && VmProcessTable.IsRunningVm(pid, vmUuid))
            {
                await Task.Delay(20, cancellationToken);
            }
        }
    }

    private DiskCacheMode CacheModeFor(DiskSpec disk) => _options.DiskCache switch
    {
        "none" => DiskCacheMode.None,
        "writeback" => DiskCacheMode.Writeback,
        "auto" or "" => disk.Path is not null && DirectIo.Supported(disk.Path, disk.Format) ? DiskCacheMode.None : DiskCacheMode.Writeback,
        var other => throw new VmStartException($"Corral:Qemu:DiskCache is '{other}'; use auto, none or writeback"),
    };

    public async Task<IReadOnlyList<IVmProcess>> AdoptRunningAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var adopted = new List<IVmProcess>();
        var root = RuntimeRoot;
        if (!Directory.Exists(root))
        {
            return adopted;
        }

        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            var uuid = Path.GetFileName(directory);
            if (!Guid.TryParseExact(uuid, "D", out _))
            {
                continue; // not ours
            }

            if (_live.ContainsKey(uuid) || !_busy.TryAdd(uuid, 0))
            {
                continue; // this instance already drives it, or is starting it right now
            }

            try
            {
                if (await AdoptOneAsync(new VmRuntimePaths(directory), uuid, cancellationToken) is { } process)
                {
                    adopted.Add(process);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or QmpException or System.Net.Sockets.SocketException)
            {
                // Left running and left in place: a later adoption may succeed; it is never killed for failing to answer.
                _logger.LogWarning(ex, "Could not adopt the VM process in {Directory}", directory);
            }
            finally
            {
                _busy.TryRemove(uuid, out _);
            }
        }

        return adopted;
    }

    private async Task<QemuVmProcess?> AdoptOneAsync(VmRuntimePaths paths, string uuid, CancellationToken cancellationToken)
    {
        var pid = VmProcessTable.ReadPidFile(paths.PidFile);
        if (pid is null || !VmProcessTable.IsRunningVm(pid.Value, uuid))
        {
            _logger.LogInformation("VM {Uuid}: no QEMU runs it any more; removing {Directory}", uuid, paths.Directory);
            TryDelete(paths.Directory);
            return null;
        }

        var spec = JsonSerializer.Deserialize<VmLaunchSpec>(await File.ReadAllTextAsync(paths.Spec, cancellationToken))
                   ?? throw new JsonException($"{paths.Spec} is empty");
        try
        {
            // A VM started before slots were recorded has its devices where QEMU put them, which is where this puts them.
            spec = PciLayout.Assign(spec);
        }
        catch (VmStartException ex)
        {
            throw new JsonException($"{paths.Spec}: {ex.Message}", ex);
        }

        if (!string.Equals(spec.VmUuid, uuid, StringComparison.OrdinalIgnoreCase))
        {
            throw new JsonException($"{paths.Spec} describes VM {spec.VmUuid}, not {uuid}");
        }

        var qmp = await QmpClient.ConnectAsync(paths.Qmp, cancellationToken, MonitorTimeout, _logger);
        var process = Track(new QemuVmProcess(spec, pid.Value, paths, qmp, _options, _logger, CacheModeFor, Release));
        _logger.LogInformation("Adopted VM {Name} ({Uuid}): QEMU pid {Pid}, QEMU {Version}", spec.Name, uuid, pid, qmp.QemuVersion);
        return process;
    }

    private QemuVmProcess Track(QemuVmProcess process)
    {
        _live[process.VmUuid] = process;
        return process;
    }

    private void Release(QemuVmProcess process) => _live.TryRemove(new KeyValuePair<string, QemuVmProcess>(process.VmUuid, process));

    /// <summary>The VM processes this instance started or adopted and has not let go of.</summary>
    public IReadOnlyCollection<QemuVmProcess> Processes => _live.Values.ToList();

    private void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Could not remove {Directory}", directory);
        }
    }

    /// <summary>Lets go of every VM process (connections close; QEMU keeps running, to be adopted by the next agent).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var process in _live.Values.ToList())
        {
            await process.DisposeAsync();
        }

        _probeLock.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
