using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>
/// One test's world: a private temporary directory (short, so socket paths fit) with the runtime and state directories and
/// overlay disks, the hypervisor instances made for the test, and the VMs started. Disposal kills, by pid, every QEMU still
/// running one of this test's VM uuids (each uuid is fresh, so nothing else can match), even when the test failed.
/// </summary>
public sealed class QemuRig : IAsyncDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly List<QemuHypervisor> _hypervisors = [];
    private readonly List<string> _uuids = [];
    private int _disks;

    public QemuRig(ITestOutputHelper output)
    {
        _output = output;
        Root = Path.Combine("/tmp", "cq-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string RuntimeDirectory => Path.Combine(Root, "vms");

    public string StateDirectory => Path.Combine(Root, "state");

    public QemuHypervisor NewHypervisor(Action<QemuOptions>? configure = null, IVmLeaseLauncher? leases = null)
    {
        var options = new QemuOptions
        {
            RuntimeDirectory = RuntimeDirectory,
            StateDirectory = StateDirectory,
            ForceAccelerator = "tcg",
        };
        configure?.Invoke(options);
        var hypervisor = new QemuHypervisor(Options.Create(options), new TestLogger<QemuHypervisor>(_output), leases);
        _hypervisors.Add(hypervisor);
        return hypervisor;
    }

    /// <summary>A copy-on-write overlay of a guest image, so tests never write to the built image.</summary>
    public async Task<string> OverlayAsync(string imageName)
    {
        var directory = await GuestImages.EnsureAsync();
        var overlay = Path.Combine(Root, $"disk{Interlocked.Increment(ref _disks).ToString(CultureInfo.InvariantCulture)}.qcow2");
        await QemuAvailability.CreateOverlayAsync(Path.Combine(directory, imageName), overlay);
        return overlay;
    }

    /// <summary>A launch spec with a fresh uuid, recorded for cleanup.</summary>
    public VmLaunchSpec Spec(bool paravirtual, IReadOnlyList<DiskSpec> disks, string? name = null, IReadOnlyDictionary<string, string>? firmware = null,
        string? incoming = null)
    {
        var uuid = Guid.NewGuid().ToString();
        lock (_uuids)
        {
            _uuids.Add(uuid);
        }

        return new VmLaunchSpec(uuid, name ?? $"qemu-test-{uuid[..8]}", 256L << 20, 1, paravirtual, disks, [],
            firmware ?? new Dictionary<string, string>(), incoming);
    }

    public async Task<VmLaunchSpec> GuestSpecAsync(bool paravirtual, IReadOnlyDictionary<string, string>? firmware = null)
    {
        var disk = await OverlayAsync(paravirtual ? GuestImages.TestImageName : GuestImages.NotoolsImageName);
        return Spec(paravirtual, [new DiskSpec(0, disk, "qcow2", false, false, true)], firmware: firmware);
    }

    public static VmRuntimePaths PathsOf(QemuRig rig, string uuid) => new(Path.Combine(rig.RuntimeDirectory, uuid));

    /// <summary>Waits until the console log holds <paramref name="text"/> <paramref name="occurrences"/> times; returns the seconds it took.</summary>
    public static async Task<double> WaitForConsoleAsync(string consoleLog, string text, TimeSpan timeout, int occurrences = 1)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (File.Exists(consoleLog) && CountOf(await File.ReadAllTextAsync(consoleLog), text) >= occurrences)
            {
                return watch.Elapsed.TotalSeconds;
            }

            await Task.Delay(100);
        }

        var tail = File.Exists(consoleLog) ? await File.ReadAllTextAsync(consoleLog) : "(no console log)";
        throw new TimeoutException($"'{text}' x{occurrences} not on the console within {timeout.TotalSeconds} s; console:\n{tail}");
    }

    public static int CountOf(string haystack, string needle)
    {
        var count = 0;
        for (var i = haystack.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = haystack.IndexOf(needle, i + needle.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>A TCP port free on loopback now, for a migration's destination to listen on.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Polls <paramref name="condition"/> (a QMP query, say) every 20 ms until it holds; 60 s unless told otherwise.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var patience = timeout ?? TimeSpan.FromSeconds(60);
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > patience)
            {
                throw new TimeoutException($"{what}: not within {patience.TotalSeconds} s");
            }

            await Task.Delay(20);
        }
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"{what}: not within {timeout.TotalSeconds} s");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Pids of live processes whose command line carries <c>-uuid</c> with one of this test's VM uuids.</summary>
    public IReadOnlyList<(int Pid, string Uuid)> LiveQemus()
    {
        string[] uuids;
        lock (_uuids)
        {
            uuids = [.. _uuids];
        }

        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            foreach (var uuid in uuids)
            {
                if (VmProcessTable.IsRunningVm(pid, uuid))
                {
                    found.Add((pid, uuid));
                }
            }
        }

        return found;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var hypervisor in _hypervisors)
        {
            try
            {
                await hypervisor.DisposeAsync();
            }
            catch (Exception ex)
            {
                _output.WriteLine($"hypervisor dispose failed: {ex}");
            }
        }

        foreach (var (pid, uuid) in LiveQemus())
        {
            _output.WriteLine($"cleanup: killing leftover QEMU {pid} of VM {uuid}");
            VmProcessTable.KillVm(pid, uuid);
        }

        await WaitUntilAsync(() => LiveQemus().Count == 0, TimeSpan.FromSeconds(20), "leftover QEMU processes to die");
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException ex)
        {
            _output.WriteLine($"could not remove {Root}: {ex.Message}");
        }
    }
}
