using System.Net.Http.Json;
using System.Text.Json;
using Corral.Model;

namespace Corral.EndToEndTests;

/// <summary>A plain XenAPI JSON-RPC client, as any third-party client would talk to Corral.</summary>
/// <param name="handler">How it reaches the host (for HTTPS, which certificate it trusts); the default one when null.</param>
public sealed class JsonRpcClient(Uri endpoint, HttpMessageHandler? handler = null) : IDisposable
{
    private readonly HttpClient _http = new(handler ?? new HttpClientHandler()) { Timeout = TimeSpan.FromMinutes(5) };
    private int _id;

    public string Session { get; private set; } = "";

    public async Task LoginAsync(string user, string password) =>
        Session = (await CallAsync("session.login_with_password", user, password, "1.0", "corral-tests")).GetString()!;

    /// <summary>Logs in as root once the agent answers (it has just been started, or restarted).</summary>
    public async Task LoginWhenReadyAsync(string password)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await LoginAsync("root", password);
                return;
            }
            catch (Exception) when (deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>Polls <paramref name="probe"/> until it gives a value (XenAPI errors count as not yet), or fails after <paramref name="timeout"/>.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string what, Func<string>? context = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await probe() is { } value)
                {
                    return value;
                }
            }
            catch (XenApiException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"timed out waiting for {what}" + (context is null ? "" : "; " + context()));
    }

    /// <summary>Calls a method with the session first, as XenAPI methods take it.</summary>
    public Task<JsonElement> CallWithSessionAsync(string method, params object?[] args) => CallAsync(method, [Session, .. args]);

    public async Task<JsonElement> CallAsync(string method, params object?[] args)
    {
        using var response = await _http.PostAsJsonAsync(new Uri(endpoint, "/jsonrpc"),
            new { jsonrpc = "2.0", method, @params = args, id = Interlocked.Increment(ref _id) });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        if (body.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
        {
            var data = error.TryGetProperty("data", out var d) ? d.EnumerateArray().Select(e => e.ToString()).ToArray() : [];
            throw new XenApiException(error.GetProperty("message").GetString()!, data);
        }

        return body.GetProperty("result").Clone();
    }

    public void Dispose() => _http.Dispose();
}
