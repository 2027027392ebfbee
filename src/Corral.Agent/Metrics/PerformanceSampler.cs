using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Api.Metrics;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.Platform;
using Corral.PoolDatabase;

namespace Corral.Agent.Metrics;

/// <summary>
/// Measures this host and its running VMs every 5 s, on the 5 s boundaries of the clock as xapi's rrdd does, into the
/// in-memory <see cref="PerformanceHistory"/> that <c>/rrd_updates</c> serves. Nothing is written to the pool database:
/// a write per VM every 5 s is more than etcd should carry for figures only a chart reads.
/// </summary>
public sealed class PerformanceSampler(
    PerformanceHistory history,
    VmSupervisor supervisor,
    IPoolDatabase database,
    HostIdentity identity,
    HostLiveness liveness,
    TimeProvider time,
    ILogger<PerformanceSampler> logger) : BackgroundService
{
    private static readonly TimeSpan DiskQueryTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DevicesMaxAge = TimeSpan.FromMinutes(1);

    private readonly CounterRates _rates = new();
    private IReadOnlyDictionary<string, CpuTimes>? _previousCpu;

    // What the pool database says of each VM process here, keyed by uuid and pid (a restarted VM is a new process).
    private Dictionary<(string Uuid, int Pid), VmDevices?> _devices = [];
    private long _devicesReadAt;

    /// <summary>The devices of a VM as its data sources name them; null in <see cref="_devices"/>: not this host's VM (yet).</summary>
    private sealed record VmDevices(int Vcpus, long MemoryBytes, long Domid, IReadOnlyList<(int Index, string Device)> Disks, IReadOnlyList<string> Vifs);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var stepMilliseconds = PerformanceHistory.SampleStepSeconds * 1000L;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                var boundary = (now / stepMilliseconds + 1) * stepMilliseconds;
                await Task.Delay(TimeSpan.FromMilliseconds(boundary - now), time, stoppingToken);
                try
                {
                    history.Add(await SampleAsync(boundary / 1000, stoppingToken));
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogWarning(ex, "Performance sampling failed; trying again at the next step");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private double MonotonicSeconds() => (double)time.GetTimestamp() / time.TimestampFrequency;

    private async Task<PerformanceSample> SampleAsync(long sampleTime, CancellationToken cancellationToken)
    {
        var values = new List<KeyValuePair<string, double>>();
        SampleHost(values);

        var processes = supervisor.All.OrderBy(p => p.VmUuid, StringComparer.Ordinal).ToList();
        try
        {
            await RefreshDevicesAsync(processes, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // The pool database out of reach (emergency mode): the host and the VMs already known are still measured.
            logger.LogDebug(ex, "Could not read this host's VMs from the pool database; sampling those known");
        }

        foreach (var process in processes)
        {
            if (_devices.GetValueOrDefault((process.VmUuid, process.ProcessId)) is { } devices)
            {
                await SampleVmAsync(process, devices, values, cancellationToken);
            }
        }

        _rates.EndRound();
        return new PerformanceSample(sampleTime, values);
    }

    private void SampleHost(List<KeyValuePair<string, double>> values)
    {
        var prefix = $"host:{identity.Uuid}:";
        void Add(string name, double value) => values.Add(new(prefix + name, value));

        var cpu = ProcStat.ReadCpuTimes();
        double Busy(string line) =>
            _previousCpu?.GetValueOrDefault(line) is { } before && cpu.TryGetValue(line, out var after) ? ProcStat.BusyFraction(before, after) : double.NaN;
        if (!cpu.ContainsKey("cpu"))
        {
            throw new InvalidDataException("/proc/stat has no 'cpu' line");
        }

        Add("cpu_avg", Busy("cpu"));
        foreach (var core in cpu.Keys.Where(k => k.Length > 3).OrderBy(k => int.Parse(k.AsSpan(3), CultureInfo.InvariantCulture)))
        {
            Add(core, Busy(core));
        }

        _previousCpu = cpu;
        var (total, free) = liveness.Memory();
        Add("memory_total_kib", total / 1024.0);
        Add("memory_free_kib", free / 1024.0);
        Add("loadavg", ProcStat.ReadLoadAverage());

        // The host's own interfaces, named as XenServer names its PIFs' data sources (bytes/s).
        var now = MonotonicSeconds();
        foreach (var link in LinkStatistics.HostInterfaces())
        {
            var counters = LinkStatistics.TryRead(link);
            var key = prefix + "pif_" + link;
            Add("pif_" + link + "_rx", counters is { } rx ? _rates.Observe(key + "_rx", rx.ReceivedBytes, now) : double.NaN);
            Add("pif_" + link + "_tx", counters is { } tx ? _rates.Observe(key + "_tx", tx.TransmittedBytes, now) : double.NaN);
        }
    }

    private async Task SampleVmAsync(IVmProcess process, VmDevices devices, List<KeyValuePair<string, double>> values, CancellationToken cancellationToken)
    {
        var prefix = $"vm:{process.VmUuid}:";
        void Add(string name, double value) => values.Add(new(prefix + name, value));
        var now = MonotonicSeconds();

        // QEMU's user and system time over all its threads (vCPUs, I/O, device emulation), shared out evenly over the
        // vCPUs: a fraction of one vCPU each, as xapi's cpuN, at most 1.
        var ticks = ProcStat.ReadProcessCpuTicks(process.ProcessId);
        var ticksPerSecond = ticks is { } t ? _rates.Observe(prefix + "cpu-ticks", t, now) : double.NaN;
        var perVcpu = Math.Clamp(ticksPerSecond / ProcStat.ClockTicksPerSecond / devices.Vcpus, 0, 1);
        for (var i = 0; i < devices.Vcpus; i++)
        {
            Add("cpu" + i.ToString(CultureInfo.InvariantCulture), perVcpu);
        }

        Add("memory", devices.MemoryBytes);

        IReadOnlyList<DiskIoCounters> io = [];
        if (devices.Disks.Count > 0)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(DiskQueryTimeout);
            try
            {
                io = await process.QueryDiskIoAsync(timeout.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // A busy or closing QMP (migration, shutdown) costs this round's disk figures only.
                logger.LogDebug(ex, "No disk counters from VM {Vm} this round", process.VmUuid);
            }
        }

        foreach (var (index, device) in devices.Disks)
        {
            var counters = io.FirstOrDefault(d => d.DiskIndex == index);
            var key = prefix + "vbd_" + device;
            Add("vbd_" + device + "_read", counters is null ? double.NaN : _rates.Observe(key + "_read", counters.ReadBytes, now));
            Add("vbd_" + device + "_write", counters is null ? double.NaN : _rates.Observe(key + "_write", counters.WrittenBytes, now));
        }

        foreach (var device in devices.Vifs)
        {
            // The tap is the host's end of the VM's NIC: what the tap transmits, the VM receives.
            var tap = LinkStatistics.TryRead(BridgeNetworking.TapName(devices.Domid, device));
            var key = prefix + "vif_" + device;
            Add("vif_" + device + "_rx", tap is { } rx ? _rates.Observe(key + "_rx", rx.TransmittedBytes, now) : double.NaN);
            Add("vif_" + device + "_tx", tap is { } tx ? _rates.Observe(key + "_tx", tx.ReceivedBytes, now) : double.NaN);
        }
    }

    /// <summary>
    /// Reads the VMs' vCPUs, memory, domid and device names again when the processes here changed, when one of them was
    /// not yet recorded as this host's (the end of an incoming migration), or once a minute; not on every round.
    /// </summary>
    private async Task RefreshDevicesAsync(List<IVmProcess> processes, CancellationToken cancellationToken)
    {
        var keys = processes.Select(p => (p.VmUuid, p.ProcessId)).ToHashSet();
        var age = time.GetElapsedTime(_devicesReadAt);
        if (keys.SetEquals(_devices.Keys) && _devices.Values.All(d => d is not null) && age < DevicesMaxAge)
        {
            return;
        }

        var devices = new Dictionary<(string Uuid, int Pid), VmDevices?>();
        foreach (var key in keys)
        {
            devices[key] = await ReadDevicesAsync(key.VmUuid, cancellationToken);
        }

        _devices = devices;
        _devicesReadAt = time.GetTimestamp();
    }

    private async Task<VmDevices?> ReadDevicesAsync(string vmUuid, CancellationToken cancellationToken)
    {
        var vm = await database.FindByUuidAsync(XenClasses.VM, vmUuid, cancellationToken);
        if (vm is null || vm.Get(XenApi.VM.ResidentOn) != identity.Ref)
        {
            return null;
        }

        var memory = vm.Get(XenApi.VM.MemoryStaticMax);
        if (!OpaqueRef.IsNull(vm.Get(XenApi.VM.Metrics))
            && await database.TryGetAsync(XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics), cancellationToken) is { } metrics
            && metrics.Get(XenApi.VMMetrics.MemoryActual) > 0)
        {
            memory = metrics.Get(XenApi.VMMetrics.MemoryActual);
        }

        var disks = new List<(int Index, string Device)>();
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd
                && int.TryParse(vbd.Get(XenApi.VBD.Userdevice), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                && vbd.Get(XenApi.VBD.Device) is { Length: > 0 } device)
            {
                disks.Add((index, device));
            }
        }

        var vifs = new List<string>();
        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif)
            {
                vifs.Add(vif.Get(XenApi.VIF.Device));
            }
        }

        return new VmDevices((int)Math.Max(1, vm.Get(XenApi.VM.VCPUsAtStartup)), memory, vm.Get(XenApi.VM.Domid),
            disks.OrderBy(d => d.Index).ToList(), vifs.OrderBy(v => int.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue).ThenBy(v => v, StringComparer.Ordinal).ToList());
    }
}
