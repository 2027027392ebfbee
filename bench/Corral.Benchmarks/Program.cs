using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Corral.Api;
using Corral.Api.Http;
using Corral.Api.Sessions;
using Corral.IntegrationTests;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// API call latency: VM.get_all_records with N VM records, over JSON-RPC and XML-RPC, against a real etcd.
var vmCount = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 30;

await using var etcd = await EtcdFixture.StartAsync();
var builder = WebApplication.CreateBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls("http://127.0.0.1:0");
builder.Services.AddEtcdPoolDatabase(o => o.Endpoints = etcd.Endpoint);
builder.Services.AddXenApi();
builder.Services.AddSingleton(SrDrivers.Default);
await using var app = builder.Build();
app.MapXenApi();
await app.StartAsync();
await app.Services.GetRequiredService<SessionService>().SetPasswordAsync("root", "bench", default);
var db = app.Services.GetRequiredService<IPoolDatabase>();
for (var batch = 0; batch < vmCount; batch += 30)
{
    var tx = new PoolTransaction();
    for (var i = batch; i < Math.Min(vmCount, batch + 30); i++)
    {
        tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = $"vm-{i:D4}", ["other_config"] = new Dictionary<string, object?> { ["bench"] = "1" } });
    }

    await db.CommitAsync(tx, default);
}

var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
using var http = new HttpClient { BaseAddress = new Uri(address) };
var login = await http.PostAsJsonAsync("/jsonrpc", new { jsonrpc = "2.0", method = "session.login_with_password", @params = new[] { "root", "bench", "1.0", "bench" }, id = 1 });
var session = (await login.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("result").GetString()!;

async Task<double[]> Measure(Func<Task<string>> call)
{
    await call(); // warm-up
    var times = new double[rounds];
    for (var i = 0; i < rounds; i++)
    {
        var sw = Stopwatch.StartNew();
        var body = await call();
        times[i] = sw.Elapsed.TotalMilliseconds;
        if (body.Length < vmCount * 100)
        {
            throw new InvalidOperationException("response too small: " + body[..Math.Min(200, body.Length)]);
        }
    }

    Array.Sort(times);
    return times;
}

var json = await Measure(async () =>
{
    using var r = await http.PostAsJsonAsync("/jsonrpc", new { jsonrpc = "2.0", method = "VM.get_all_records", @params = new[] { session }, id = 2 });
    return await r.Content.ReadAsStringAsync();
});
var xmlBody = $"<?xml version=\"1.0\"?><methodCall><methodName>VM.get_all_records</methodName><params><param><value>{session}</value></param></params></methodCall>";
var xml = await Measure(async () =>
{
    using var content = new StringContent(xmlBody, Encoding.UTF8, "text/xml");
    using var r = await http.PostAsync(new Uri("/", UriKind.Relative), content);
    return await r.Content.ReadAsStringAsync();
});

static string Row(string name, double[] t) =>
    string.Create(CultureInfo.InvariantCulture, $"{name,-34} median {t[t.Length / 2],8:F1} ms   p95 {t[(int)(t.Length * 0.95)],8:F1} ms   min {t[0],8:F1} ms");
Console.WriteLine($"VM.get_all_records with {vmCount} VM records ({XenClasses.VMSchema.Fields.Count} fields each), {rounds} calls, real etcd 3.4:");
Console.WriteLine(Row("JSON-RPC /jsonrpc", json));
Console.WriteLine(Row("XML-RPC /", xml));
await app.StopAsync();
