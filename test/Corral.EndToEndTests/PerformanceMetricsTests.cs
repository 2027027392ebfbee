using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Xml.Linq;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// One real host running one VM: its <c>/rrd_updates</c> has the host's and the VM's measurements, as XenCenter and the
/// web console read them, and refuses a caller without a session.
/// </summary>
[Trait("Lab", "single-host")]
public sealed class PerformanceMetricsTests : IAsyncLifetime
{
    private LabFixture _lab = null!;
    private JsonRpcClient _api = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        _lab = await LabFixture.StartAsync();
        _api = new JsonRpcClient(_lab.Agent.Endpoint);
        await _api.LoginWhenReadyAsync(AgentHost.Password);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        _api.Dispose();
        await _lab.DisposeAsync();
    }

    private Task<HttpResponseMessage> GetAsync(string query) => _http.GetAsync(new Uri(_lab.Agent.Endpoint, "/rrd_updates?" + query));

    /// <summary>The xport document as legend name (without the CF) to the values of its column, newest row first.</summary>
    private async Task<(Dictionary<string, double[]> Columns, XElement Meta)> XportAsync(string query)
    {
        using var response = await GetAsync(query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/xml", response.Content.Headers.ContentType?.MediaType);
        var doc = XDocument.Parse(await response.Content.ReadAsStringAsync());
        var meta = doc.Root!.Element("meta")!;
        var legend = meta.Element("legend")!.Elements("entry").Select(e => e.Value).ToList();
        var rows = doc.Root.Element("data")!.Elements("row")
            .Select(r => r.Elements("v").Select(v => double.Parse(v.Value, CultureInfo.InvariantCulture)).ToArray()).ToList();
        var columns = legend.Select((name, i) => (name, i)).ToDictionary(c => c.name["AVERAGE:".Length..], c => rows.Select(r => r[c.i]).ToArray());
        return (columns, meta);
    }

    private static async Task<bool> PingAsync(string ip)
    {
        using var ping = Process.Start(new ProcessStartInfo("ping", ["-c", "3", "-i", "0.2", "-W", "1", ip]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await ping.WaitForExitAsync();
        return ping.ExitCode == 0;
    }

    [Fact]
    public async Task Rrd_updates_serves_the_host_and_its_running_vm_and_refuses_a_bad_session()
    {
        var host = (await _api.CallWithSessionAsync("host.get_all"))[0].GetString()!;
        var hostUuid = (await _api.CallWithSessionAsync("host.get_uuid", host)).GetString()!;
        var sr = (await _api.CallWithSessionAsync("SR.create", host, new Dictionary<string, string> { ["location"] = _lab.SharedDirectory }, 0,
            "Shared storage", "", "file", "user", true, new Dictionary<string, string>())).GetString()!;
        var sw = Stopwatch.StartNew();
        string? template = null;
        while (template is null && sw.Elapsed < TimeSpan.FromSeconds(120))
        {
            var refs = await _api.CallWithSessionAsync("VM.get_by_name_label", "Corral Linux test");
            template = refs.GetArrayLength() > 0 ? refs[0].GetString() : null;
            await Task.Delay(template is null ? 250 : 0);
        }

        Assert.NotNull(template);
        var vm = (await _api.CallWithSessionAsync("VM.copy", template, "e2e metrics", sr)).GetString()!;
        await _api.CallWithSessionAsync("VM.set_is_a_template", vm, false);
        var ip = $"{_lab.Subnet}.12";
        await _api.CallWithSessionAsync("VM.add_to_xenstore_data", vm, "vm-data/ip", ip + "/24");
        var vmUuid = (await _api.CallWithSessionAsync("VM.get_uuid", vm)).GetString()!;
        var start = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await _api.CallWithSessionAsync("VM.start", vm, false, false);

        // Some traffic through the VM's NIC while it runs: pings answered once the guest is up.
        sw.Restart();
        while (!await PingAsync(ip) && sw.Elapsed < TimeSpan.FromSeconds(120))
        {
        }

        var query = $"session_id={Uri.EscapeDataString(_api.Session)}&start={start}&cf=AVERAGE&interval=5&host=true";
        var hostPrefix = $"host:{hostUuid}:";
        var vmPrefix = $"vm:{vmUuid}:";
        Dictionary<string, double[]> columns = [];
        sw.Restart();
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            (columns, _) = await XportAsync(query);
            if (columns.GetValueOrDefault(vmPrefix + "cpu0")?.Any(v => v > 0) == true && columns.GetValueOrDefault(vmPrefix + "vif_0_rx")?.Any(v => v > 0) == true)
            {
                break;
            }

            await Task.Delay(1000);
        }

        Assert.Contains(columns[vmPrefix + "cpu0"], v => v > 0 && v <= 1);
        Assert.Contains(columns[vmPrefix + "vif_0_rx"], v => v > 0);
        Assert.Contains(vmPrefix + "vif_0_tx", columns.Keys);
        Assert.Contains(vmPrefix + "vbd_vda_read", columns.Keys);
        Assert.Contains(vmPrefix + "vbd_vda_write", columns.Keys);
        var memory = double.Parse((await _api.CallWithSessionAsync("VM.get_memory_static_max", vm)).ToString(), CultureInfo.InvariantCulture);
        Assert.Contains(columns[vmPrefix + "memory"], v => v == memory);
        Assert.Contains(columns[hostPrefix + "memory_total_kib"], v => v > 0);
        Assert.Contains(columns[hostPrefix + "memory_free_kib"], v => v > 0);
        Assert.Contains(columns[hostPrefix + "cpu_avg"], v => v is >= 0 and <= 1);
        Assert.Contains(hostPrefix + "cpu0", columns.Keys);
        Assert.Contains(hostPrefix + "loadavg", columns.Keys);
        // The host's own interfaces (the VM's bridge and tap are not among them).
        var pifs = columns.Keys.Where(k => k.StartsWith(hostPrefix + "pif_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(pifs);
        Assert.DoesNotContain(pifs, k => k.Contains("pif_lo_", StringComparison.Ordinal) || k.Contains("pif_" + _lab.Bridge + "_", StringComparison.Ordinal));
        Assert.All(pifs, k => Assert.All(columns[k], v => Assert.True(double.IsNaN(v) || v >= 0)));

        // Only that VM, without the host; and the same data as JSON, every scalar a string.
        var (onlyVm, meta) = await XportAsync($"session_id={Uri.EscapeDataString(_api.Session)}&start={start}&vm_uuid={vmUuid}");
        Assert.All(onlyVm.Keys, k => Assert.StartsWith(vmPrefix, k, StringComparison.Ordinal));
        Assert.Equal("5", meta.Element("step")!.Value);
        using (var response = await GetAsync(query + "&json=true"))
        {
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var legend = json.RootElement.GetProperty("meta").GetProperty("legend").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.Contains($"AVERAGE:{vmPrefix}cpu0", legend);
            var row = json.RootElement.GetProperty("data")[0];
            Assert.Equal(legend.Count, row.GetProperty("values").GetArrayLength());
            Assert.True(long.Parse(row.GetProperty("t").GetString()!, CultureInfo.InvariantCulture) >= start);
        }

        // The console page of any pool host may read it across origins; another site's page may not.
        foreach (var (origin, allowed) in new[] { ("http://127.0.0.1:8080", true), ("http://console.example", false) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_lab.Agent.Endpoint, "/rrd_updates?" + query));
            request.Headers.Add("Origin", origin);
            using var response = await _http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(allowed, response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) && values.Single() == origin);
        }

        // As xapi: a session that is not one is 401, a missing start 400.
        using (var bad = await GetAsync($"session_id=OpaqueRef:{Guid.NewGuid()}&start={start}&host=true"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        }

        using (var none = await GetAsync($"start={start}&host=true"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }

        using (var noStart = await GetAsync($"session_id={Uri.EscapeDataString(_api.Session)}&host=true"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, noStart.StatusCode);
        }

        await _api.CallWithSessionAsync("VM.hard_shutdown", vm);
        Assert.Empty(LabFixture.QemuPidsOf(vmUuid));
    }
}
