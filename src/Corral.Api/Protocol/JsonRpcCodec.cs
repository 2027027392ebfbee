using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Corral.Model;

namespace Corral.Api.Protocol;

/// <summary>A decoded JSON-RPC call. <see cref="Id"/> is echoed back as it came (number, string or null).</summary>
public sealed record JsonRpcRequest(string MethodName, IReadOnlyList<object?> Parameters, JsonElement? Id, bool IsVersion2);

/// <summary>
/// JSON-RPC as xapi serves it on <c>/jsonrpc</c>: version 2.0 (<c>result</c> or <c>error</c>) and 1.0 (both members,
/// one null). Errors carry the XenAPI error code as the message and its parameters as the data.
/// </summary>
public static class JsonRpcCodec
{
    /// <summary>Parses a call read whole (<see cref="RpcBody"/>); values nested deeper than <paramref name="maxNesting"/> are a parse error.</summary>
    public static JsonRpcRequest ParseRequest(MemoryStream body, int maxNesting)
    {
        ArgumentNullException.ThrowIfNull(body);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.GetBuffer().AsMemory(0, (int)body.Length), new JsonDocumentOptions { MaxDepth = maxNesting });
        }
        catch (JsonException ex)
        {
            throw new XenApiException(ErrorCodes.JsonRpcParseError, ex.Message);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String)
            {
                throw new XenApiException(ErrorCodes.JsonRpcParseError, "a JSON-RPC request is an object with a method");
            }

            var parameters = new List<object?>();
            if (root.TryGetProperty("params", out var p))
            {
                if (p.ValueKind != JsonValueKind.Array)
                {
                    throw new XenApiException(ErrorCodes.JsonRpcParseError, "params must be an array");
                }

                parameters.AddRange(p.EnumerateArray().Select(ToValue));
            }

            JsonElement? id = root.TryGetProperty("id", out var i) ? i.Clone() : null;
            var v2 = root.TryGetProperty("jsonrpc", out var version) && version.ValueKind == JsonValueKind.String && version.GetString() == "2.0";
            return new JsonRpcRequest(method.GetString()!, parameters, id, v2);
        }
    }

    private static object? ToValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Array => e.EnumerateArray().Select(ToValue).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(m => m.Name, m => ToValue(m.Value), StringComparer.Ordinal),
        _ => null,
    };

    public static string WriteSuccess(JsonRpcRequest request, object? result) => Write(request, w =>
    {
        w.WritePropertyName("result");
        WriteValue(w, result);
        if (!request.IsVersion2)
        {
            w.WriteNull("error");
        }
    });

    /// <summary>
    /// A failure as xapi writes it: in 2.0 an error object (code 1, the XenAPI code as the message, its parameters as
    /// data); in 1.0 the error description itself, <c>["CODE", "param", ...]</c>, beside a null result.
    /// </summary>
    public static string WriteFailure(JsonRpcRequest? request, IReadOnlyList<string> errorDescription) => Write(request, w =>
    {
        if (request is { IsVersion2: false })
        {
            w.WriteNull("result");
            w.WriteStartArray("error");
            foreach (var part in errorDescription)
            {
                w.WriteStringValue(part);
            }

            w.WriteEndArray();
            return;
        }

        w.WriteStartObject("error");
        w.WriteNumber("code", 1);
        w.WriteString("message", errorDescription.Count > 0 ? errorDescription[0] : ErrorCodes.InternalError);
        w.WriteStartArray("data");
        foreach (var part in errorDescription.Skip(1))
        {
            w.WriteStringValue(part);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static string Write(JsonRpcRequest? request, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (request is null || request.IsVersion2)
            {
                w.WriteString("jsonrpc", "2.0");
            }

            body(w);
            w.WritePropertyName("id");
            if (request?.Id is { } id)
            {
                id.WriteTo(w);
            }
            else
            {
                w.WriteNullValue();
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Values as xapi's JSON-RPC writes them: ints as numbers, datetimes in XenAPI's spelling.</summary>
    public static void WriteValue(Utf8JsonWriter w, object? value)
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
                w.WriteNumberValue(double.IsFinite(d) ? d : 0);
                break;
            case DateTime dt:
                w.WriteStringValue(XenDateTime.Format(dt));
                break;
            case IDictionary<string, object?> map:
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
}
