using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Corral.Model;

namespace Corral.Api.Client;

/// <summary>
/// The XenAPI over JSON-RPC 2.0, as XenServer serves it on <c>POST /jsonrpc</c>: <c>{"jsonrpc":"2.0","method":m,
/// "params":[...],"id":n}</c>, answered by <c>{"result":...}</c> or <c>{"error":{"code":..,"message":"CODE",
/// "data":[params]}}</c>. Ints go as JSON numbers, datetimes as XenAPI's <c>yyyyMMddTHH:mm:ssZ</c> strings.
/// </summary>
public sealed class JsonRpcXenApiClient : IXenApiClient, IDisposable
{
    private readonly HttpClient _http;
    private long _id;

    /// <summary>How long a connection may take before the host counts as unreachable.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <param name="handler">
    /// The connection handler; for an <c>https</c> endpoint, one that decides which server certificate to trust
    /// (<see cref="Tls.PinnedTls"/>). Without one, only certificates the machine's certificate authorities vouch for are.
    /// </param>
    public JsonRpcXenApiClient(Uri endpoint, HttpMessageHandler? handler = null, string userAgent = "xe-cli")
    {
        Endpoint = endpoint;
        // A long call (a VM start, a disk copy) may take minutes, as with xe; an unreachable host fails fast.
        _http = new HttpClient(handler ?? new SocketsHttpHandler { ConnectTimeout = ConnectTimeout }, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue(userAgent, "0.2"));
    }

    public Uri Endpoint { get; }

    /// <summary>The JSON-RPC endpoint of a server over plain HTTP, as <c>http://server:port/jsonrpc</c> (IPv6 literals bracketed).</summary>
    public static Uri EndpointFor(string server, int port) => EndpointFor(server, port, secure: false);

    /// <summary>The JSON-RPC endpoint of a server, <c>https://server:port/jsonrpc</c> or <c>http://...</c>.</summary>
    public static Uri EndpointFor(string server, int port, bool secure)
    {
        var host = server.Contains(':', StringComparison.Ordinal) && !server.StartsWith('[') ? $"[{server}]" : server;
        return new UriBuilder(secure ? Uri.UriSchemeHttps : Uri.UriSchemeHttp, host, port, "/jsonrpc").Uri;
    }

    public async Task GetAsync(string pathAndQuery, Stream destination, CancellationToken cancellationToken)
    {
        var uri = new Uri(Endpoint, pathAndQuery);
        try
        {
            using var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                throw new XenApiTransportException($"{uri.AbsolutePath}: HTTP {(int)response.StatusCode} {text.Trim()}");
            }

            await response.Content.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new XenApiTransportException(DescribeTransportFailure(ex, Endpoint), ex) { Server = Endpoint.Host.Trim('[', ']') };
        }
    }

    public async Task PutAsync(string pathAndQuery, Stream source, CancellationToken cancellationToken)
    {
        var uri = new Uri(Endpoint, pathAndQuery);
        try
        {
            using var content = new StreamContent(source, 1 << 20);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            if (source.CanSeek)
            {
                content.Headers.ContentLength = source.Length - source.Position;
            }

            using var response = await _http.PutAsync(uri, content, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                throw new XenApiTransportException($"{uri.AbsolutePath}: HTTP {(int)response.StatusCode} {text.Trim()}");
            }
        }
        catch (HttpRequestException ex)
        {
            throw new XenApiTransportException(DescribeTransportFailure(ex, Endpoint), ex) { Server = Endpoint.Host.Trim('[', ']') };
        }
        catch (IOException ex)
        {
            throw new XenApiTransportException("Lost connection to the server.", ex);
        }
    }

    public async Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        var body = EncodeRequest(method, parameters, Interlocked.Increment(ref _id));
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        byte[] answer;
        try
        {
            using var response = await _http.PostAsync(Endpoint, content, cancellationToken).ConfigureAwait(false);
            answer = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode && !LooksLikeJson(answer))
            {
                throw new XenApiTransportException("Server internal error.");
            }
        }
        catch (HttpRequestException ex) when (Find<Tls.CertificateRejectedException>(ex) is { } rejected)
        {
            // The server's certificate is not the one trusted for it: said as the check said it, and no failover.
            throw new XenApiTransportException(rejected.Message, ex) { CertificateRejected = true, Server = Endpoint.Host.Trim('[', ']') };
        }
        catch (HttpRequestException ex)
        {
            throw new XenApiTransportException(DescribeTransportFailure(ex, Endpoint), ex)
            {
                CouldNotConnect = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError,
                Server = Endpoint.Host.Trim('[', ']'),
            };
        }
        catch (TaskCanceledException ex) when (ex.InnerException is TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            // SocketsHttpHandler's ConnectTimeout: a host that is gone (its address unanswered) rather than refusing.
            throw new XenApiTransportException("Error: Connection timed out (calling connect )", ex) { CouldNotConnect = true, Server = Endpoint.Host.Trim('[', ']') };
        }
        catch (IOException ex)
        {
            throw new XenApiTransportException("Lost connection to the server.", ex);
        }

        return DecodeResponse(answer);
    }

    /// <summary>xe's words for a failed connection (newcli: <c>Error: %s (calling connect )</c>, <c>Host '%s' not found.</c>).</summary>
    public static string DescribeTransportFailure(HttpRequestException ex, Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(ex);
        ArgumentNullException.ThrowIfNull(endpoint);
        if (ex.HttpRequestError == HttpRequestError.SecureConnectionError || Find<System.Security.Authentication.AuthenticationException>(ex) is not null)
        {
            // Not a TLS server there (a plain HTTP port), or no protocol or cipher in common.
            return $"Error: the TLS handshake with {endpoint.Host.Trim('[', ']')}:{endpoint.Port} failed (calling connect ): "
                + (Find<System.Security.Authentication.AuthenticationException>(ex)?.Message ?? ex.Message)
                + " Use --nossl for a server that speaks plain HTTP.";
        }

        var socket = Find<SocketException>(ex);
        return socket?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "Error: Connection refused (calling connect )",
            SocketError.TimedOut => "Error: Connection timed out (calling connect )",
            SocketError.HostUnreachable => "Error: No route to host (calling connect )",
            SocketError.NetworkUnreachable => "Error: Network is unreachable (calling connect )",
            SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain =>
                $"No addrinfo found for host: {endpoint.Host.Trim('[', ']')}, port: {endpoint.Port}Host '{endpoint.Host.Trim('[', ']')}' not found.",
            SocketError.ConnectionReset => "Lost connection to the server.",
            _ when ex.HttpRequestError == HttpRequestError.ResponseEnded => "Lost connection to the server.",
            _ when ex.InnerException is TaskCanceledException or TimeoutException => "Error: Connection timed out (calling connect )",
            _ => "Unable to contact server. Please check server and port settings.",
        };
    }

    private static T? Find<T>(Exception? e)
        where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }

        return null;
    }

    private static bool LooksLikeJson(byte[] body)
    {
        foreach (var b in body)
        {
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                continue;
            }

            return b == (byte)'{';
        }

        return false;
    }

    /// <summary>The request body of one call.</summary>
    public static byte[] EncodeRequest(string method, IReadOnlyList<object?> parameters, long id)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WriteString("method", method);
            w.WriteStartArray("params");
            foreach (var p in parameters)
            {
                WriteValue(w, p);
            }

            w.WriteEndArray();
            w.WriteNumber("id", id);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The result of a response body; a JSON-RPC error is thrown as the XenAPI failure it carries.</summary>
    public static object? DecodeResponse(ReadOnlySpan<byte> body)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body);
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException ex)
        {
            throw new XenApiTransportException("Server internal error.", ex);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new XenApiTransportException("Server internal error.");
            }

            if (root.TryGetProperty("error", out var error) && error.ValueKind != JsonValueKind.Null)
            {
                throw ToFailure(error);
            }

            return root.TryGetProperty("result", out var result) ? ToValue(result) : null;
        }
    }

    private static XenApiException ToFailure(JsonElement error)
    {
        if (error.ValueKind != JsonValueKind.Object)
        {
            return new XenApiException(ErrorCodes.InternalError, error.ToString());
        }

        var code = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : ErrorCodes.InternalError;
        var data = new List<string>();
        if (error.TryGetProperty("data", out var d))
        {
            if (d.ValueKind == JsonValueKind.Array)
            {
                data.AddRange(d.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()));
            }
            else if (d.ValueKind == JsonValueKind.String)
            {
                data.Add(d.GetString()!);
            }
        }

        return new XenApiException(code, [.. data]);
    }

    private static object? ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(ToValue).ToList(),
        JsonValueKind.Object => ToMap(e),
        _ => null,
    };

    private static Dictionary<string, object?> ToMap(JsonElement e)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            map[p.Name] = ToValue(p.Value);
        }

        return map;
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null:
                w.WriteNullValue();
                break;
            case string s:
                w.WriteStringValue(s);
                break;
            case bool b:
                w.WriteBooleanValue(b);
                break;
            case long l:
                w.WriteNumberValue(l);
                break;
            case int i:
                w.WriteNumberValue(i);
                break;
            case double d:
                w.WriteNumberValue(d);
                break;
            case DateTime dt:
                w.WriteStringValue(XenDateTime.Format(dt));
                break;
            case IEnumerable<KeyValuePair<string, string>> stringMap:
                w.WriteStartObject();
                foreach (var (k, v) in stringMap)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
                break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                w.WriteStartObject();
                foreach (var (k, v) in map)
                {
                    w.WritePropertyName(k);
                    WriteValue(w, v);
                }

                w.WriteEndObject();
                break;
            case System.Collections.IEnumerable list:
                w.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(w, item);
                }

                w.WriteEndArray();
                break;
            default:
                w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    public void Dispose() => _http.Dispose();
}
