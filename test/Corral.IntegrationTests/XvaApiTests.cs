using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Corral.Api.Http;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// VM export and import over HTTP (<c>/export</c>, <c>/import</c>) against a real pool database and the host's real
/// storage: a halted VM with a disk of known data, an NVRAM and a TPM exported, the archive read by Python's tarfile and
/// xmlrpc.client (a reader we did not write), imported again as a new VM with the same disk bytes (qemu-img compare),
/// NVRAM and TPM; HTTP Basic, RBAC, the export mark, and failures that leave nothing behind.
/// </summary>
public sealed partial class XvaApiTests(AgentFixture pool) : IClassFixture<AgentFixture>, IAsyncLifetime
{
    private const long DiskSize = 8L << 20;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        // The handlers run against the fixture's pool (its database, tasks, sessions and storage).
        _app.Use((context, next) =>
        {
            context.RequestServices = pool.Services;
            return next(context);
        });
        _app.MapXenApi();
        _app.MapXva();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(5) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static Dictionary<string, object?> Map(params (string Key, string Value)[] entries) => entries.ToDictionary(e => e.Key, e => (object?)e.Value);

    private async Task<(string Sr, string Directory)> SrAsync()
    {
        var directory = Path.Combine(pool.Root, "xva-sr-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(directory);
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "xva SR", "", "file", "user", false, Map()))!;
        return (sr, directory);
    }

    /// <summary>A halted VM with a disk (data at its start, middle and end), an empty CD drive, a VIF, an NVRAM and a TPM with contents.</summary>
    private async Task<(string Vm, string Vdi, string Vtpm)> VmAsync(string sr, string name, long size = DiskSize, bool fill = false)
    {
        var vdi = (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["virtual_size"] = size.ToString(System.Globalization.CultureInfo.InvariantCulture), ["name_label"] = name + " disk", ["type"] = "user",
        }))!;
        var path = await PathOf(vdi);
        await Run("qemu-io", "-f", "qcow2", "-c", "write -P 65 0 512", "-c", $"write -P 66 {(3 << 20) + 512} 4096", "-c", $"write -P 67 {size - 512} 512", path);
        if (fill)
        {
            await Run("qemu-io", "-f", "qcow2", "-c", $"write -P 68 0 {size}", path);
        }

        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = name, ["power_state"] = "Halted", ["metrics"] = metrics.Ref, ["memory_static_max"] = 256L << 20,
            ["memory_dynamic_max"] = 256L << 20, ["memory_dynamic_min"] = 256L << 20, ["memory_static_min"] = 256L << 20, ["VCPUs_max"] = 1L, ["VCPUs_at_startup"] = 1L,
            ["NVRAM"] = Map(("EFI-variables", "dWVmaSB2YXJpYWJsZXM=")), ["platform"] = Map(("secureboot", "true")), ["HVM_boot_params"] = Map(("firmware", "uefi")),
            ["other_config"] = Map(("mac_seed", "3f1d7a0e-0000-4000-8000-00000000abcd")),
        });
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["VDI"] = vdi, ["userdevice"] = "0", ["type"] = "Disk", ["mode"] = "RW", ["bootable"] = true });
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["userdevice"] = "3", ["type"] = "CD", ["mode"] = "RO", ["empty"] = true });
        var networks = await pool.Database.GetAllAsync(XenClasses.Network, default);
        var network = networks.FirstOrDefault(n => n.Get(XenApi.Network.NameLabel) == "xva net")?.Ref;
        if (network is null)
        {
            var created = tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?> { ["name_label"] = "xva net", ["bridge"] = "xvabr0" });
            network = created.Ref;
        }

        tx.Create(XenClasses.VIFSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["network"] = network, ["device"] = "0", ["MAC"] = "02:00:00:12:34:56" });
        await pool.Database.CommitAsync(tx, default);
        var vtpm = (string)(await pool.S("VTPM.create", vm.Ref, false))!;
        await VtpmRecords.SetContentsAsync(pool.Database, vtpm, Convert.ToBase64String("swtpm state of the exported VM"u8.ToArray()), default);
        return (vm.Ref, vdi, vtpm);
    }

    private async Task<string> PathOf(string vdi)
    {
        var record = await Record("VDI", vdi);
        var pbd = (string)((List<object?>)(await pool.S("SR.get_PBDs", (string)record["SR"]!))!)[0]!;
        var config = (Dictionary<string, object?>)(await pool.S("PBD.get_device_config", pbd))!;
        return Path.Combine((string)config["location"]!, (string)record["location"]!);
    }

    private async Task<Dictionary<string, object?>> Record(string cls, string self) => (Dictionary<string, object?>)(await pool.S($"{cls}.get_record", self))!;

    private static async Task<(int ExitCode, string Output)> Exec(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    private static async Task<string> Run(string file, params string[] args)
    {
        var (code, output) = await Exec(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)}: {output}");
        return output;
    }

    private async Task<string> UuidOf(string vm) => (string)(await pool.S("VM.get_uuid", vm))!;

    private async Task<(HttpStatusCode Status, string TaskRef, string File)> ExportAsync(string query, AuthenticationHeaderValue? auth = null)
    {
        var file = Path.Combine(pool.Root, $"export-{Guid.NewGuid():N}.xva");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/export?" + query);
        request.Headers.Authorization = auth;
        using var response = await _http.SendAsync(request);
        await using (var output = File.Create(file))
        {
            await response.Content.CopyToAsync(output);
        }

        return (response.StatusCode, response.Headers.TryGetValues("task-id", out var t) ? t.Single() : "", file);
    }

    private async Task<(HttpStatusCode Status, string TaskRef, string Body)> ImportAsync(string query, byte[] archive)
    {
        using var content = new ByteArrayContent(archive);
        using var response = await _http.PutAsync("/import?" + query, content);
        return (response.StatusCode, response.Headers.TryGetValues("task-id", out var t) ? t.Single() : "", await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("OpaqueRef:[0-9a-f-]+")]
    private static partial Regex Refs();
}
