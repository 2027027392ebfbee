using System.Globalization;
using System.Text;
using System.Xml;
using Corral.Model;

namespace Corral.Api.Protocol;

public sealed record XmlRpcRequest(string MethodName, IReadOnlyList<object?> Parameters);

/// <summary>
/// XML-RPC as xapi serves it on <c>/</c>: every response is a struct <c>{Status, Value}</c> or
/// <c>{Status: "Failure", ErrorDescription: [...]}</c>. xapi sends 64-bit ints as strings (XML-RPC's int is 32-bit).
/// </summary>
public static class XmlRpcCodec
{
    private static readonly XmlReaderSettings ReaderSettings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreWhitespace = false,
        IgnoreComments = true,
    };

    /// <summary>
    /// Parses a call read whole (<see cref="RpcBody"/>). Elements nested deeper than <paramref name="maxNesting"/> are
    /// refused before the document is built: reading values recurses, and a request nested 100,000 deep once exhausted
    /// the agent's stack.
    /// </summary>
    public static XmlRpcRequest ParseRequest(MemoryStream body, int maxNesting)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            using (var scan = XmlReader.Create(body, ReaderSettings))
            {
                while (scan.Read())
                {
                    if (scan.Depth > maxNesting)
                    {
                        throw new XenApiException(ErrorCodes.XmlRpcUnmarshalFailure, $"elements nested deeper than {maxNesting}", "methodCall");
                    }
                }
            }

            body.Position = 0;
            var document = new XmlDocument { XmlResolver = null };
            using (var reader = XmlReader.Create(body, ReaderSettings))
            {
                document.Load(reader);
            }

            var call = document.DocumentElement;
            if (call?.Name != "methodCall")
            {
                throw Unmarshal("methodCall", call?.Name ?? "nothing");
            }

            var name = call["methodName"]?.InnerText.Trim();
            if (string.IsNullOrEmpty(name))
            {
                throw Unmarshal("methodName", "nothing");
            }

            var parameters = new List<object?>();
            if (call["params"] is { } ps)
            {
                foreach (var param in ps.ChildNodes.OfType<XmlElement>().Where(e => e.Name == "param"))
                {
                    parameters.Add(ReadValue(param["value"] ?? throw Unmarshal("value", param.InnerXml)));
                }
            }

            return new XmlRpcRequest(name, parameters);
        }
        catch (XmlException ex)
        {
            throw new XenApiException(ErrorCodes.XmlRpcUnmarshalFailure, ex.Message, "methodCall");
        }
    }

    /// <summary>
    /// One bare <c>&lt;value&gt;</c> document (an XVA's <c>ova.xml</c>), nested at most <paramref name="maxNesting"/>
    /// deep, read as a call's parameters are.
    /// </summary>
    public static object? ParseValue(string xml, int maxNesting)
    {
        try
        {
            using (var scan = XmlReader.Create(new StringReader(xml), ReaderSettings))
            {
                while (scan.Read())
                {
                    if (scan.Depth > maxNesting)
                    {
                        throw new XenApiException(ErrorCodes.XmlRpcUnmarshalFailure, $"elements nested deeper than {maxNesting}", "value");
                    }
                }
            }

            var document = new XmlDocument { XmlResolver = null };
            using (var reader = XmlReader.Create(new StringReader(xml), ReaderSettings))
            {
                document.Load(reader);
            }

            var value = document.DocumentElement;
            return value?.Name == "value" ? ReadValue(value) : throw Unmarshal("value", value?.Name ?? "nothing");
        }
        catch (XmlException ex)
        {
            throw new XenApiException(ErrorCodes.XmlRpcUnmarshalFailure, ex.Message, "value");
        }
    }

    private static XenApiException Unmarshal(string expected, string got) => new(ErrorCodes.XmlRpcUnmarshalFailure, got, expected);

    private static object? ReadValue(XmlElement value)
    {
        var typed = value.ChildNodes.OfType<XmlElement>().FirstOrDefault();
        if (typed is null)
        {
            return value.InnerText; // an untyped value is a string
        }

        var text = typed.InnerText;
        return typed.Name switch
        {
            "string" => text,
            "i4" or "int" or "i8" => long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : throw Unmarshal("int", text),
            "double" => double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Unmarshal("double", text),
            "boolean" => text.Trim() switch { "1" => true, "0" => false, _ => throw Unmarshal("boolean", text) },
            "dateTime.iso8601" => XenDateTime.Parse(text.Trim()),
            "base64" => Encoding.UTF8.GetString(Convert.FromBase64String(text.Trim())),
            "nil" => null,
            "array" => (typed["data"]?.ChildNodes.OfType<XmlElement>() ?? []).Where(e => e.Name == "value").Select(ReadValue).ToList(),
            "struct" => typed.ChildNodes.OfType<XmlElement>().Where(e => e.Name == "member").ToDictionary(
                m => m["name"]?.InnerText ?? throw Unmarshal("name", m.InnerXml),
                m => ReadValue(m["value"] ?? throw Unmarshal("value", m.InnerXml)),
                StringComparer.Ordinal),
            _ => throw Unmarshal("value", typed.Name),
        };
    }

    public static string WriteSuccess(object? value) => WriteResponse(w =>
    {
        Member(w, "Status", "Success");
        w.WriteStartElement("member");
        w.WriteElementString("name", "Value");
        WriteValue(w, value ?? "");
        w.WriteEndElement();
    });

    public static string WriteFailure(IReadOnlyList<string> errorDescription) => WriteResponse(w =>
    {
        Member(w, "Status", "Failure");
        w.WriteStartElement("member");
        w.WriteElementString("name", "ErrorDescription");
        WriteValue(w, errorDescription.Cast<object?>().ToList());
        w.WriteEndElement();
    });

    private static void Member(XmlWriter w, string name, string value)
    {
        w.WriteStartElement("member");
        w.WriteElementString("name", name);
        WriteValue(w, value);
        w.WriteEndElement();
    }

    /// <summary>
    /// A bare value as the response's one parameter, without the <c>{Status, Value}</c> struct: how xapi answers
    /// <c>system.listMethods</c> (Xen Orchestra reads it so).
    /// </summary>
    public static string WriteRaw(object? value) => Write(w => WriteValue(w, value));

    private static string WriteResponse(Action<XmlWriter> members) => Write(w =>
    {
        w.WriteStartElement("value");
        w.WriteStartElement("struct");
        members(w);
        w.WriteEndElement();
        w.WriteEndElement();
    });

    /// <summary>
    /// The document as xapi writes it: <c>&lt;?xml version="1.0"?&gt;</c>, no whitespace between elements (Xen
    /// Orchestra's parser keeps whitespace nodes), sent as UTF-8.
    /// </summary>
    private static string Write(Action<XmlWriter> param)
    {
        var text = new StringBuilder(1024).Append("<?xml version=\"1.0\"?>");
        using (var w = XmlWriter.Create(text, new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, CheckCharacters = false, ConformanceLevel = ConformanceLevel.Fragment }))
        {
            w.WriteStartElement("methodResponse");
            w.WriteStartElement("params");
            w.WriteStartElement("param");
            param(w);
            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndElement();
        }

        return text.ToString();
    }

    /// <summary>Writes one value as xapi does: strings untyped-free as &lt;value&gt;text&lt;/value&gt;, ints as strings.</summary>
    public static void WriteValue(XmlWriter w, object? value)
    {
        w.WriteStartElement("value");
        switch (value)
        {
            case null:
                w.WriteString("");
                break;
            case string s:
                w.WriteString(Clean(s));
                break;
            case bool b:
                w.WriteElementString("boolean", b ? "1" : "0");
                break;
            case long or int:
                w.WriteString(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
            case double d:
                w.WriteElementString("double", d.ToString("R", CultureInfo.InvariantCulture));
                break;
            case DateTime dt:
                w.WriteElementString("dateTime.iso8601", XenDateTime.Format(dt));
                break;
            case IDictionary<string, object?> map:
                w.WriteStartElement("struct");
                foreach (var (k, v) in map)
                {
                    w.WriteStartElement("member");
                    w.WriteElementString("name", Clean(k));
                    WriteValue(w, v);
                    w.WriteEndElement();
                }

                w.WriteEndElement();
                break;
            case System.Collections.IEnumerable list:
                w.WriteStartElement("array");
                w.WriteStartElement("data");
                foreach (var item in list)
                {
                    WriteValue(w, item);
                }

                w.WriteEndElement();
                w.WriteEndElement();
                break;
            default:
                w.WriteString(Clean(Convert.ToString(value, CultureInfo.InvariantCulture) ?? ""));
                break;
        }

        w.WriteEndElement();
    }

    /// <summary>Drops characters XML 1.0 cannot carry (a guest-reported string could hold any byte).</summary>
    private static string Clean(string s) => s.All(XmlConvert.IsXmlChar) ? s : new string(s.Where(XmlConvert.IsXmlChar).ToArray());
}
