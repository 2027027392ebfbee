using System.Diagnostics;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The seed's clumsy test, run through the lab exactly as a user would: three hosts in namespaces, both VMs on the
/// master, pull the plug on the master; a survivor becomes master unaided, the dead host shows host-metrics-live
/// false, and vm-reset-powerstate plus vm-start bring both VMs back on survivors, answering ping. The lab is torn down
/// whatever happens.
/// </summary>
public sealed class LabScenarioTests : IAsyncLifetime
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-labtest-home-").FullName;
    private readonly string _id = (Environment.ProcessId % 1000).ToString(System.Globalization.CultureInfo.InvariantCulture);
    private Dictionary<string, string> _env = null!;

    private static string Repo => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));

    public Task InitializeAsync()
    {
        _env = new Dictionary<string, string>
        {
            ["HOME"] = _home,
            ["CORRAL_LAB_DIR"] = Path.Combine(_home, "lab"),
            ["CORRAL_LAB_RUN"] = Path.Combine(_home, "run"),
            ["CORRAL_LAB_NS_PREFIX"] = $"corral-t{_id}-h",
            ["CORRAL_LAB_VETH_PREFIX"] = $"t{_id}",
            ["CORRAL_LAB_BRIDGE"] = $"ctv{_id}",
            ["CORRAL_LAB_MGMT_BRIDGE"] = $"ctm{_id}",
        };
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        try
        {
            // Keep the agents' own account of the election for whoever reads a failure.
            foreach (var log in Directory.Exists(Path.Combine(_home, "lab")) ? Directory.GetFiles(Path.Combine(_home, "lab"), "agent-host*.log") : [])
            {
                File.Copy(log, Path.Combine(Path.GetTempPath(), "corral-labtest-" + Path.GetFileName(log)), overwrite: true);
            }

            await RunAsync(Path.Combine(Repo, "lab"), "down");
        }
        finally
        {
            Directory.Delete(_home, recursive: true);
        }
    }

    private async Task<(int Code, string Output)> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in _env)
        {
            info.Environment[k] = v;
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, (await stdout).Trim() + (await stderr is { Length: > 0 } e ? "\n" + e.Trim() : ""));
    }

    private async Task<string> Xe(params string[] args)
    {
        var (code, output) = await RunAsync(Path.Combine(Repo, ".build/xe/xe"), args);
        Assert.True(code == 0, $"xe {string.Join(' ', args)} failed: {output}");
        return output;
    }

    private static async Task<bool> Ping(string ip)
    {
        using var p = Process.Start(new ProcessStartInfo("ping", ["-c", "1", "-W", "1", ip]) { RedirectStandardOutput = true })!;
        await p.WaitForExitAsync();
        return p.ExitCode == 0;
    }

    private static async Task Eventually(Func<Task<bool>> probe, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await probe())
        {
            Assert.True(sw.Elapsed < timeout, "timed out waiting for " + what);
            await Task.Delay(500);
        }
    }

    [Fact]
    public async Task Pulling_the_plug_on_the_master_needs_no_rescue_of_the_pool_and_two_commands_per_vm()
    {
        var (code, up) = await RunAsync(Path.Combine(Repo, "lab"), "up");
        Assert.True(code == 0, up);
        var hostLine = up.Split('\n').First(l => l.Contains("Hosts:", StringComparison.Ordinal));
        var addresses = hostLine.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => w.Count(c => c == '.') == 3).ToList();
        Assert.Equal(3, addresses.Count);
        Assert.Equal("true,true,true", await Xe("host-list", "params=host-metrics-live", "--minimal"));
        var master = await Xe("pool-list", "params=master", "--minimal");
        Assert.Equal(await Xe("host-list", "name-label=lab-host1", "--minimal"), master);
        var vmIps = (await Xe("vm-list", "params=name-label", "--minimal")).Split(',').Length;
        Assert.Equal(2, vmIps);

        await RunAsync(Path.Combine(Repo, "lab"), "pull-plug", "1");
        var survivor = new[] { "-s", addresses[1], "-p", "80" };
        await Eventually(async () =>
        {
            var (c, m) = await RunAsync(Path.Combine(Repo, ".build/xe/xe"), [.. survivor, "pool-list", "params=master", "--minimal"]);
            return c == 0 && m.Length > 0 && m != master;
        }, TimeSpan.FromSeconds(90), "a new master");
        Assert.Equal("false", await Xe([.. survivor, "host-list", "name-label=lab-host1", "params=host-metrics-live", "--minimal"]));

        foreach (var vm in new[] { "Corral test VM", "Corral test VM (no tools)" })
        {
            await Xe([.. survivor, "vm-reset-powerstate", $"vm={vm}", "--force"]);
            await Xe([.. survivor, "vm-start", $"vm={vm}"]);
            Assert.NotEqual("lab-host1", await Xe([.. survivor, "vm-param-get", $"uuid={await Xe([.. survivor, "vm-list", $"name-label={vm}", "--minimal"])}", "param-name=resident-on-name-label"]));
        }

        var subnet = string.Join('.', (await Xe([.. survivor, "vm-param-get", $"uuid={await Xe([.. survivor, "vm-list", "name-label=Corral test VM", "--minimal"])}", "param-name=xenstore-data", "param-key=vm-data/ip"])).Split('/')[0].Split('.').Take(3));
        await Eventually(() => Ping($"{subnet}.10"), TimeSpan.FromSeconds(120), "the optimized VM to answer ping on a survivor");
        await Eventually(() => Ping($"{subnet}.11"), TimeSpan.FromSeconds(120), "the VM without tools to answer ping on a survivor");
    }
}
