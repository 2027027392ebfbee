using System.Net;
using System.Text;
using System.Text.Json;
using Corral.Api;
using Corral.Api.Http;
using Corral.Api.Sessions;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Corral.WebConsole.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>The XenAPI over HTTP, as clients see it: envelopes, and bad input answered with XenAPI errors, never a 500.</summary>
public sealed class WireTests : IAsyncLifetime
{
    private EtcdFixture _etcd = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private readonly DirectoryInfo _console = Directory.CreateTempSubdirectory("corral-wire-console-");

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        builder.Services.AddXenApi();
        builder.Services.AddSingleton(SrDrivers.Default);
        builder.Services.AddWebConsole(o => o.ContentDirectory = _console.FullName);
        File.WriteAllText(Path.Combine(_console.FullName, "index.html"), "<!doctype html><title>console</title>");
        _app = builder.Build();
        _app.UseWebConsole();
        _app.MapXenApi();
        _app.MapRrdUpdates();
        await _app.StartAsync();
        await _app.Services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
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
            _console.Delete(recursive: true);
        }
    }

    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, string body, string type)
    {
        using var content = new StringContent(body, Encoding.UTF8, type);
        using var response = await _http.PostAsync(new Uri(path, UriKind.Relative), content);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Call(string method, params string[] xmlValues) =>
        $"<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>{string.Concat(xmlValues.Select(v => $"<param><value>{v}</value></param>"))}</params></methodCall>";

    [Fact]
    public async Task Xml_rpc_login_returns_a_session_in_the_status_value_envelope()
    {
        var (status, body) = await PostAsync("/", Call("session.login_with_password", "root", "pw", "1.0", "test"), "text/xml");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<name>Status</name><value>Success</value>", body, StringComparison.Ordinal);
        Assert.Contains("<name>Value</name><value>OpaqueRef:", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Xml_rpc_answers_any_other_post_path_and_the_web_console_is_served_beside_it()
    {
        // Python's XML-RPC client posts to /RPC2, Xen Orchestra falls back to /xmlrpc: xapi takes both as XML-RPC.
        foreach (var path in new[] { "/RPC2", "/xmlrpc" })
        {
            var (status, body) = await PostAsync(path, Call("session.login_with_password", "root", "pw"), "text/xml");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Contains("<name>Status</name><value>Success</value>", body, StringComparison.Ordinal);
        }

        // That fallback never hides the console's files from a browser, nor turns an unknown GET into a 405.
        using var app = await _http.GetAsync(new Uri("/console/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, app.StatusCode);
        Assert.Contains("<title>console</title>", await app.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var missing = await _http.GetAsync(new Uri("/no-such-page", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Theory]
    [InlineData("<methodCall><methodName>VM.get_all", "XMLRPC_UNMARSHAL_FAILURE")]
    [InlineData("not xml at all", "XMLRPC_UNMARSHAL_FAILURE")]
    [InlineData("<?xml version=\"1.0\"?><methodCall><methodName>VM.frobnicate</methodName><params/></methodCall>", "MESSAGE_METHOD_UNKNOWN")]
    [InlineData("<?xml version=\"1.0\"?><methodCall><methodName>session.login_with_password</methodName><params><param><value>root</value></param><param><value>bad</value></param><param><value>1.0</value></param><param><value>x</value></param></params></methodCall>", "SESSION_AUTHENTICATION_FAILED")]
    [InlineData("<?xml version=\"1.0\"?><methodCall><methodName>VM.get_all</methodName><params><param><value>a</value></param><param><value>b</value></param></params></methodCall>", "MESSAGE_PARAMETER_COUNT_MISMATCH")]
    public async Task Bad_xml_rpc_gets_a_failure_envelope(string request, string code)
    {
        var (status, body) = await PostAsync("/", request, "text/xml");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<value>Failure</value>", body, StringComparison.Ordinal);
        Assert.Contains($"<value>{code}</value>", body, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_rpc_round_trip_and_errors()
    {
        var (_, login) = await PostAsync("/jsonrpc", """{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","pw","1.0","t"],"id":7}""", "application/json");
        using var doc = JsonDocument.Parse(login);
        Assert.Equal(7, doc.RootElement.GetProperty("id").GetInt32());
        var session = doc.RootElement.GetProperty("result").GetString()!;

        var (_, hosts) = await PostAsync("/jsonrpc", $$"""{"jsonrpc":"2.0","method":"host.get_all","params":["{{session}}"],"id":"a"}""", "application/json");
        using var hostsDoc = JsonDocument.Parse(hosts);
        Assert.Equal(JsonValueKind.Array, hostsDoc.RootElement.GetProperty("result").ValueKind);

        var (status, bad) = await PostAsync("/jsonrpc", $$"""{"jsonrpc":"2.0","method":"VM.get_record","params":["{{session}}","OpaqueRef:nope"],"id":1}""", "application/json");
        Assert.Equal(HttpStatusCode.OK, status);
        using var badDoc = JsonDocument.Parse(bad);
        var error = badDoc.RootElement.GetProperty("error");
        Assert.Equal("HANDLE_INVALID", error.GetProperty("message").GetString());
        Assert.Equal(["VM", "OpaqueRef:nope"], error.GetProperty("data").EnumerateArray().Select(e => e.GetString()));

        var (malformedStatus, malformed) = await PostAsync("/jsonrpc", "{\"method\": ", "application/json");
        Assert.Equal(HttpStatusCode.OK, malformedStatus);
        Assert.Contains("JSONRPC_PARSE_ERROR", malformed, StringComparison.Ordinal);
    }

    private static string Nested(string open, string close, int depth) =>
        string.Concat(Enumerable.Repeat(open, depth)) + "x" + string.Concat(Enumerable.Repeat(close, depth));

    private async Task AssertStillAnswersAsync()
    {
        var (status, body) = await PostAsync("/", Call("session.login_with_password", "root", "pw", "1.0", "t"), "text/xml");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<name>Status</name><value>Success</value>", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deeply_nested_calls_without_credentials_are_refused_and_the_host_answers_on()
    {
        // 6,000 arrays deep (18,000 elements, about 250 KB: under the body limit); 100,000 once exhausted the agent's stack.
        var xml = $"<?xml version=\"1.0\"?><methodCall><methodName>session.login_with_password</methodName><params><param><value>"
            + Nested("<array><data><value>", "</value></data></array>", 6_000) + "</value></param></params></methodCall>";
        var (status, body) = await PostAsync("/", xml, "text/xml");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<value>XMLRPC_UNMARSHAL_FAILURE</value>", body, StringComparison.Ordinal);
        Assert.Contains("nested deeper than 64", body, StringComparison.Ordinal);

        var json = """{"jsonrpc":"2.0","method":"session.login_with_password","params":[""" + Nested("[", "]", 100_000).Replace("x", "1", StringComparison.Ordinal) + "],\"id\":1}";
        var (jsonStatus, jsonBody) = await PostAsync("/jsonrpc", json, "application/json");
        Assert.Equal(HttpStatusCode.OK, jsonStatus);
        Assert.Contains("JSONRPC_PARSE_ERROR", jsonBody, StringComparison.Ordinal);

        // A XenAPI parameter as deep as real ones get (a map of maps of lists) is read, and reaches the method.
        var struct3 = "<struct><member><name>a</name><value><struct><member><name>b</name><value><array><data><value>c</value></data></array></value></member></struct></value></member></struct>";
        var (_, fine) = await PostAsync("/", Call("VM.set_other_config", "OpaqueRef:none", "OpaqueRef:none", struct3), "text/xml");
        Assert.DoesNotContain("XMLRPC_UNMARSHAL_FAILURE", fine, StringComparison.Ordinal);
        Assert.Contains("<value>Failure</value>", fine, StringComparison.Ordinal);
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task Bodies_over_the_limit_are_refused_with_413_before_they_are_parsed()
    {
        var big = Call("session.login_with_password", new string('a', 400 * 1024), "pw");
        var (status, body) = await PostAsync("/", big, "text/xml");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("at most 307200 bytes", body, StringComparison.Ordinal);

        // Sent without a length (chunked): counted as it arrives.
        using var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/jsonrpc", UriKind.Relative)) { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task Password_guessing_is_throttled_on_login_and_on_rrd_updates_basic_auth()
    {
        for (var i = 0; i < 5; i++)
        {
            var (_, guess) = await PostAsync("/", Call("session.login_with_password", "root", "guess" + i), "text/xml");
            Assert.Contains("<value>SESSION_AUTHENTICATION_FAILED</value>", guess, StringComparison.Ordinal);
            Assert.DoesNotContain("Too many", guess, StringComparison.Ordinal);
        }

        // The right password is refused too while guessing is throttled: its check would tell the guesser.
        var (_, right) = await PostAsync("/", Call("session.login_with_password", "root", "pw"), "text/xml");
        Assert.Contains("<value>SESSION_AUTHENTICATION_FAILED</value>", right, StringComparison.Ordinal);
        Assert.Contains("Too many failed logins for this user or from this address; try again in ", right, StringComparison.Ordinal);

        using var basic = new HttpRequestMessage(HttpMethod.Get, new Uri("/rrd_updates?start=0", UriKind.Relative));
        basic.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:pw")));
        using var rrd = await _http.SendAsync(basic);
        Assert.Equal(HttpStatusCode.Unauthorized, rrd.StatusCode);
    }
}
