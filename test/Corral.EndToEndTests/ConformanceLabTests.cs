using System.Diagnostics;
using System.Net.Sockets;
using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// The conformance suite (test/conformance) against the shared lab: clients we did not write (Python's
/// xmlrpc.client, Debian's XenAPI SDK, JSON-RPC as XenCenter and Xen Orchestra send it) run XenCenter's and Xen
/// Orchestra's connect sequences and the operations (lifecycle, live migration, maintenance mode, HA) against the pool,
/// checking every answer as those clients do. One lab serves every script; run_suite.py orders them so that the pool
/// ends as it began. Over HTTPS too when the build serves it. Each script's output is reported; the results
/// (.build/conformance/last-run.json) feed tools/generate-compatibility.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class ConformanceLabTests(ITestOutputHelper output, SharedLab shared)
{
    private const string Python = "/usr/bin/python3"; // Debian's, which sees python3-os-xenapi
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task Real_xenapi_clients_connect_and_operate_the_pool_as_xencenter_and_xen_orchestra_do()
    {
        var master = _lab.Addresses[0];
        List<string> urls = [$"http://{master}"];
        if (await ServesAsync(master, 443))
        {
            urls.Add($"https://{master}");
        }
        else
        {
            output.WriteLine($"{master} does not serve HTTPS on 443: the suite runs over HTTP only");
        }

        var results = Path.Combine(LabSession.Repo, ".build", "conformance", "last-run.json");
        var watch = Stopwatch.StartNew();
        var (code, text) = await _lab.RunAsync(Python, [Path.Combine(LabSession.Repo, "test", "conformance", "run_suite.py"), .. urls,
            "--allow-unauthorized", "--ping", "--results", results]);
        output.WriteLine(text);
        output.WriteLine($"[suite took {watch.Elapsed.TotalSeconds:0} s]");

        // The failing steps first: CI shows the message's first lines.
        var failures = text.Split('\n').Where(l => l.StartsWith("FAIL", StringComparison.Ordinal) || l.StartsWith("== FAILED", StringComparison.Ordinal));
        var diagnostics = "";
        if (code != 0 && text.Contains("ping", StringComparison.OrdinalIgnoreCase))
        {
            // A step that pinged the guest failed: what the lab shows of the test VM, to tell a hung guest from a lost path.
            var vm = await _lab.Xe("vm-list", "name-label=Corral test VM", "--minimal");
            var ip = (await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
            diagnostics = "\n" + await GuestDiagnostics.DescribeAsync(_lab, vm, ip);
        }

        Assert.True(code == 0, string.Join('\n', failures) + diagnostics);
    }

    private static async Task<bool> ServesAsync(string address, int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            await client.ConnectAsync(address, port, timeout.Token);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}
