using System.Net.Http.Json;
using System.Text.Json;
using Corral.Model;

namespace Corral.Cli;

/// <summary>A XenAPI client over JSON-RPC, as xe uses it: one session for the whole command.</summary>
public sealed class XenApiClient(Uri server) : IDisposable
{
    // Long calls (a VM start, a copy) may take minutes, but an unreachable host must fail fast, as xe does.
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }) { Timeout = TimeSpan.FromHours(1) };
    private int _id;

    public string Session { get; private set; } = "";

    public async Task LoginAsync(string user, string password, CancellationToken cancellationToken) =>
        Session = (string)(await CallAsync("session.login_with_password", [user, password, "1.0", "xe"], cancellationToken))!;

    public async Task LogoutAsync(CancellationToken cancellationToken)
    {
        if (Session.Length > 0)
        {
            await CallAsync("session.logout", [Session], cancellationToken);
        }
    }

    /// <summary>Calls a method, the session first.</summary>
    public Task<object?> InvokeAsync(string method, CancellationToken cancellationToken, params object?[] args) =>
        CallAsync(method, [Session, .. args], cancellationToken);

    public async Task<object?> CallAsync(string method, object?[] args, CancellationToken cancellationToken)
    {
        using var response = await _http.PostAsJsonAsync(new Uri(server, "/jsonrpc"),
            new { jsonrpc = "2.0", method, @params = args, id = Interlocked.Increment(ref _id) }, cancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        if (body.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
        {
            var data = error.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Array ? d.EnumerateArray().Select(e => e.ToString()).ToArray() : [];
            throw new XenApiException(error.GetProperty("message").GetString() ?? "INTERNAL_ERROR", data);
        }

        return ToValue(body.GetProperty("result"));
    }

    private static object? ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(ToValue).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToValue(p.Value), StringComparer.Ordinal),
        _ => null,
    };

    public void Dispose() => _http.Dispose();
}
