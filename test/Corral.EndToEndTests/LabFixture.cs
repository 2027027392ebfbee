using System.Diagnostics;
using Corral.IntegrationTests;

namespace Corral.EndToEndTests;

/// <summary>
/// A one-host pool made for a test: its own etcd, bridge (on a subnet checked to be free), directories and agent.
/// Everything is removed afterwards, processes by pid, links by name, even when the test failed.
/// </summary>
public sealed class LabFixture : IAsyncDisposable
{
    private readonly string _root;

    private LabFixture(string root, EtcdFixture etcd, string bridge, string subnet)
    {
        _root = root;
        Etcd = etcd;
        Bridge = bridge;
        Subnet = subnet;
        Agent = new AgentHost(etcd.Endpoint, Path.Combine(root, "state"), RuntimeDirectory, bridge, GuestImages, Path.Combine(root, "templates"));
    }

    public EtcdFixture Etcd { get; }

    public AgentHost Agent { get; }

    public string Bridge { get; }

    /// <summary>The first three octets of the VM subnet, e.g. "10.213.7".</summary>
    public string Subnet { get; }

    public string SharedDirectory => Path.Combine(_root, "shared");

    public string RuntimeDirectory => Path.Combine(_root, "run");

    public static string GuestImages =>
        Environment.GetEnvironmentVariable("CORRAL_GUEST_DIR")
        ?? Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../guest/build"));

    public static async Task<LabFixture> StartAsync()
    {
        var subnet = await FreeSubnetAsync();
        var bridge = $"cte{Environment.ProcessId % 100000}";
        var root = Directory.CreateTempSubdirectory("corral-e2e-").FullName;
        Directory.CreateDirectory(Path.Combine(root, "shared"));
        var etcd = await EtcdFixture.StartAsync();
        await RunAsync("ip", "link", "add", bridge, "type", "bridge");
        await RunAsync("ip", "addr", "add", $"{subnet}.1/24", "dev", bridge);
        await RunAsync("ip", "link", "set", bridge, "up");
        var lab = new LabFixture(root, etcd, bridge, subnet);
        lab.Agent.Start();
        return lab;
    }

    /// <summary>A 10.2xx.y.0/24 that no interface or route of this machine uses.</summary>
    private static async Task<string> FreeSubnetAsync()
    {
        var used = await RunAsync("ip", "-o", "addr") + await RunAsync("ip", "route");
        for (var i = 0; i < 200; i++)
        {
            var candidate = $"10.{200 + Random.Shared.Next(50)}.{Random.Shared.Next(1, 250)}";
            if (!used.Contains(candidate + ".", StringComparison.Ordinal))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("no free subnet for the test lab");
    }

    public static async Task<string> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {error}");
        }

        return output;
    }

    /// <summary>The pids of QEMU processes running this VM (its uuid is on their command line).</summary>
    public static IReadOnlyList<int> QemuPidsOf(string vmUuid)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.StartsWith("qemu-system", StringComparison.Ordinal) || cmdline.Contains("/qemu-system", StringComparison.Ordinal))
                {
                    if (cmdline.Contains(vmUuid, StringComparison.Ordinal))
                    {
                        pids.Add(pid);
                    }
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return pids;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Agent.DisposeAsync();
        }
        finally
        {
            // Even when the agent failed (it had exited): a bridge left behind would fail every later lab of a process
            // whose pid ends the same.
            await RemoveLabAsync();
        }
    }

    private async Task RemoveLabAsync()
    {
        // QEMU processes outlive the agent by design: stop the ones this lab started, by the pidfiles in its runtime dir.
        if (Directory.Exists(RuntimeDirectory))
        {
            foreach (var pidfile in Directory.EnumerateFiles(RuntimeDirectory, "*.pid", SearchOption.AllDirectories))
            {
                if (int.TryParse(File.ReadAllText(pidfile).Trim(), out var pid))
                {
                    try
                    {
                        using var p = Process.GetProcessById(pid);
                        p.Kill();
                        await p.WaitForExitAsync();
                    }
                    catch (ArgumentException)
                    {
                    }
                }
            }
        }

        foreach (var link in Directory.EnumerateDirectories("/sys/class/net"))
        {
            var master = Path.Combine(link, "master");
            if (File.Exists(master) || Directory.Exists(master))
            {
                var target = Path.GetFileName(new DirectoryInfo(master).ResolveLinkTarget(true)?.FullName ?? "");
                if (target == Bridge)
                {
                    await RunAsync("ip", "link", "del", Path.GetFileName(link));
                }
            }
        }

        await RunAsync("ip", "link", "del", Bridge);
        await Etcd.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
