using System.Net;
using System.Text;
using System.Text.Json;
using Corral.Api;
using Corral.Api.Http;
using Corral.Api.Sessions;
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
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// XenCenter's login, call for call as its <c>Session.login_with_password</c> and <c>SetupSessionDetails</c> make
/// it (JSON-RPC 2.0 over HTTP), each answer checked as XenCenter reads it: any XenAPI error in steps 2 to 6 sends
/// XenCenter back to step 1, forever.
/// </summary>
public sealed class XenCenterConnectTests : IAsyncLifetime
{
    private const string Originator = "XenCenter 2023.4.0.1234";
    private readonly string _hostRef = OpaqueRef.New();
    private EtcdFixture _etcd = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private int _id;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        builder.Services.AddXenApi(o => o.HostRef = _hostRef);
        builder.Services.AddSingleton(SrDrivers.Default);
        _app = builder.Build();
        _app.MapXenApi();
        await _app.StartAsync();
        await _app.Services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);

        // A one-host pool, as an agent registers it: the pool, its master and the master's metrics.
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenApi.HostMetrics.Schema, new Dictionary<string, object?> { ["live"] = true });
        tx.Create(XenApi.Host.Schema, new Dictionary<string, object?> { ["name_label"] = "h1", ["address"] = "127.0.0.1", ["metrics"] = metrics.Ref }, _hostRef);
        tx.Create(XenApi.Pool.Schema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = _hostRef });
        await _app.Services.GetRequiredService<IPoolDatabase>().CommitAsync(tx, default);

        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async Task DisposeAsync()
    {
        try
        {
            _http.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
        }
    }

    /// <summary>One call as XenCenter's JsonRpcClient makes it; the result, after the checks its JSON reader makes.</summary>
    private async Task<JsonElement> CallAsync(string method, params object[] parameters)
    {
        var id = ++_id;
        var body = JsonSerializer.Serialize(new { jsonrpc = "2.0", method, @params = parameters, id });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/jsonrpc") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.UserAgent.ParseAdd("XenCenter/2023.4.0.1234");
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = doc.RootElement;
        Assert.Equal("2.0", root.GetProperty("jsonrpc").GetString());
        Assert.Equal(id, root.GetProperty("id").GetInt32());
        Assert.False(root.TryGetProperty("error", out var error), $"{method} failed: {error}");
        return root.GetProperty("result").Clone();
    }

    [Fact]
    public async Task XenCenters_login_sequence_is_answered_without_an_error()
    {
        // 1. The four-argument login, with XenCenter's API version and its name as the originator.
        var login = await CallAsync("session.login_with_password", "root", "pw", "2.20", Originator);
        var session = login.GetString()!;
        Assert.StartsWith("OpaqueRef:", session, StringComparison.Ordinal);
        Assert.NotEqual(OpaqueRef.Null, session);

        // 2. SetAPIVersion: the pools; the first one's master must be a real host.
        var pools = await CallAsync("pool.get_all_records", session);
        Assert.Equal(JsonValueKind.Object, pools.ValueKind);
        var pool = pools.EnumerateObject().First().Value;
        var master = pool.GetProperty("master").GetString()!;
        Assert.Equal(_hostRef, master);

        // 3. The master's record: the API version as JSON integers, at least 2.6 and not 2.7.
        var host = await CallAsync("host.get_record", session, master);
        var major = host.GetProperty("API_version_major");
        var minor = host.GetProperty("API_version_minor");
        Assert.Equal(JsonValueKind.Number, major.ValueKind);
        Assert.Equal(JsonValueKind.Number, minor.ValueKind);
        var version = (major.GetInt64(), minor.GetInt64());
        Assert.True(version.CompareTo((2L, 6L)) >= 0 && version != (2L, 7L), $"API {version} is refused by XenCenter");

        // 4. SetADDetails: root is the local superuser, which skips the directory questions (4a-4c).
        var superuser = await CallAsync("session.get_is_local_superuser", session, session);
        Assert.Equal(JsonValueKind.True, superuser.ValueKind);

        // 5. SetRbacPermissions: a JSON array of strings; empty for root, as xapi records root's sessions.
        var permissions = await CallAsync("session.get_rbac_permissions", session, session);
        Assert.Equal(JsonValueKind.Array, permissions.ValueKind);
        Assert.Empty(permissions.EnumerateArray());

        // 6. and 7. The roles, read at login and again by the cache fill.
        for (var pass = 0; pass < 2; pass++)
        {
            CheckRoles(await CallAsync("role.get_all_records", session), permissions.EnumerateArray().Select(p => p.GetString()!).ToHashSet());
        }
    }

    /// <summary>The roles as XenCenter's Role class reads them, and the session's roles as SetRbacPermissions picks them.</summary>
    private static void CheckRoles(JsonElement roles, HashSet<string> sessionPermissions)
    {
        Assert.Equal(JsonValueKind.Object, roles.ValueKind);
        var byName = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var refs = roles.EnumerateObject().Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var role in roles.EnumerateObject())
        {
            Assert.StartsWith("OpaqueRef:", role.Name, StringComparison.Ordinal);
            var record = role.Value;
            Assert.Equal(JsonValueKind.String, record.GetProperty("uuid").ValueKind);
            Assert.Equal(JsonValueKind.String, record.GetProperty("name_description").ValueKind);
            Assert.True(record.GetProperty("is_internal").ValueKind is JsonValueKind.True or JsonValueKind.False);
            Assert.Equal("OpaqueRef:" + record.GetProperty("uuid").GetString(), role.Name);
            var subroles = record.GetProperty("subroles");
            Assert.Equal(JsonValueKind.Array, subroles.ValueKind);
            Assert.All(subroles.EnumerateArray(), s => Assert.Contains(s.GetString()!, refs));
            byName.Add(record.GetProperty("name_label").GetString()!, record);
        }

        foreach (var name in new[] { "pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only" })
        {
            Assert.NotEqual(0, byName[name].GetProperty("subroles").GetArrayLength());
            Assert.False(byName[name].GetProperty("is_internal").GetBoolean());
        }

        Assert.Equal("OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba", roles.EnumerateObject().Single(r => r.Value.GetProperty("name_label").GetString() == "pool-admin").Name);
        Assert.Equal(0, byName["vm.start"].GetProperty("subroles").GetArrayLength());
        Assert.DoesNotContain(byName["read-only"].GetProperty("subroles").EnumerateArray(),
            s => s.GetString() == roles.EnumerateObject().Single(r => r.Value.GetProperty("name_label").GetString() == "vm.start").Name);

        // XenCenter's Session.Roles: roles with subroles whose name is among the session's permissions (none for root).
        Assert.DoesNotContain(byName, r => r.Value.GetProperty("subroles").GetArrayLength() > 0 && sessionPermissions.Contains(r.Key));
    }

    [Fact]
    public async Task The_session_record_holds_what_xapi_records_at_a_root_login()
    {
        var session = (await CallAsync("session.login_with_password", "root", "pw", "2.20", Originator)).GetString()!;
        var record = await CallAsync("session.get_record", session, session);
        Assert.Equal(_hostRef, record.GetProperty("this_host").GetString());
        Assert.Equal(OpaqueRef.Null, record.GetProperty("this_user").GetString());
        Assert.Equal(OpaqueRef.Null, record.GetProperty("subject").GetString());
        Assert.Equal(OpaqueRef.Null, record.GetProperty("parent").GetString());
        Assert.True(record.GetProperty("is_local_superuser").GetBoolean());
        Assert.False(record.GetProperty("pool").GetBoolean());
        Assert.False(record.GetProperty("client_certificate").GetBoolean());
        Assert.Equal("root", record.GetProperty("auth_user_name").GetString());
        Assert.Equal("", record.GetProperty("auth_user_sid").GetString());
        Assert.Equal(Originator, record.GetProperty("originator").GetString());
        Assert.Empty(record.GetProperty("rbac_permissions").EnumerateArray());
        foreach (var time in new[] { "last_active", "validation_time" })
        {
            var text = record.GetProperty(time).GetString()!;
            Assert.True(Math.Abs((XenDateTime.Parse(text) - DateTime.UtcNow).TotalMinutes) < 5, $"{time} is {text}");
        }

        Assert.Equal(OpaqueRef.Null, (await CallAsync("session.get_subject", session, session)).GetString());
        Assert.Equal("", (await CallAsync("session.get_auth_user_sid", session, session)).GetString());
        Assert.Equal("root", (await CallAsync("session.get_auth_user_name", session, session)).GetString());
        Assert.Equal(OpaqueRef.Null, (await CallAsync("session.get_this_user", session, session)).GetString());
    }
}
