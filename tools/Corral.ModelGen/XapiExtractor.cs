using System.Globalization;
using System.Text.Json.Nodes;

namespace Corral.ModelGen;

/// <summary>
/// Reads xapi's published datamodel (<c>doc/data/xenapi.json</c>) and, for what that file leaves out, the parameter
/// defaults declared in xapi's IDL sources (<c>ocaml/idl/datamodel*.ml</c>), into <see cref="DatamodelFacts"/>.
/// </summary>
public static class XapiExtractor
{
    public static DatamodelFacts Extract(string xenapiJson, IReadOnlyList<string> idlSources, string? constantsSource, string source, TextWriter log)
    {
        var root = JsonNode.Parse(File.ReadAllText(xenapiJson))?.AsArray() ?? throw new InvalidDataException("xenapi.json is not a list of classes");
        var defaults = new OcamlParameterDefaults(constantsSource is null ? "" : File.ReadAllText(constantsSource));
        foreach (var file in idlSources)
        {
            defaults.Add(File.ReadAllText(file));
        }

        defaults.Read();

        var enums = new SortedDictionary<string, EnumFacts>(StringComparer.Ordinal);
        var classes = new List<ClassFacts>();
        var matched = 0;
        foreach (var cls in root.Select(n => n!.AsObject()))
        {
            var name = Text(cls, "name");
            foreach (var e in cls["enums"]?.AsArray() ?? [])
            {
                var values = e!["values"]!.AsArray().Select(v => Text(v!.AsObject(), "name")).ToList();
                enums.TryAdd(Text(e.AsObject(), "name"), new EnumFacts(Text(e.AsObject(), "name"), values));
            }

            var fields = cls["fields"]!.AsArray().Select(f => Field(f!.AsObject())).ToList();
            var messages = new List<MessageFacts>();
            foreach (var m in cls["messages"]!.AsArray().Select(n => n!.AsObject()))
            {
                var message = Message(name, m, defaults, ref matched);
                messages.Add(message);
            }

            classes.Add(new ClassFacts(name, State(cls), fields, messages));
        }

        log.WriteLine($"{classes.Count} classes, {classes.Sum(c => c.Fields.Count)} fields, {classes.Sum(c => c.Messages.Count)} messages, {enums.Count} enums");
        log.WriteLine($"parameter defaults: {defaults.Count} declarations read, {matched} messages given defaults");
        foreach (var unmatched in defaults.Unused)
        {
            log.WriteLine($"  not in xenapi.json (newer than it): {unmatched}");
        }

        return new DatamodelFacts(source, classes, enums.Values.ToList());
    }

    private static string Text(JsonObject o, string key) => o[key]?.GetValue<string>() ?? throw new InvalidDataException($"no {key} in {o.ToJsonString()[..Math.Min(80, o.ToJsonString().Length)]}");

    private static string State(JsonObject o) => Text(o["lifecycle"]!.AsObject(), "state") switch
    {
        "Published_s" => "published",
        "Deprecated_s" => "deprecated",
        "Removed_s" => "removed",
        "Prototyped_s" => "prototyped",
        var s => throw new InvalidDataException($"unknown lifecycle state {s}"),
    };

    private static FieldFacts Field(JsonObject f)
    {
        var type = Text(f, "type");
        var text = f["default"]?.GetValue<string>();
        return new FieldFacts(Text(f, "name"), type, Text(f, "qualifier"), text is null ? null : FieldDefault(type, text));
    }

    private static MessageFacts Message(string className, JsonObject m, OcamlParameterDefaults defaults, ref int matched)
    {
        var name = Text(m, "name");
        var all = m["params"]!.AsArray().Select(p => (Name: Text(p!.AsObject(), "name"), Type: Text(p.AsObject(), "type"))).ToList();
        var session = all.Count > 0 && all[0].Name == "session_id" && all[0].Type == "session ref";
        var parameters = (session ? all.Skip(1) : all).ToList();
        var declared = defaults.Find(name, parameters.Select(p => p.Name).ToList());
        if (declared is not null)
        {
            matched++;
        }

        var facts = parameters.Select((p, i) => new ParameterFacts(p.Name, p.Type, declared?[i])).ToList();
        var result = m["result"]!.AsArray();
        return new MessageFacts(name, session, facts, result[0]!.GetValue<string>(),
            m["errors"]!.AsArray().Select(e => Text(e!.AsObject(), "name")).ToList(),
            m["roles"]!.AsArray().Select(r => r!.GetValue<string>()).ToList(),
            m["implicit"]!.GetValue<bool>(), State(m));
    }

    /// <summary>Turns a field default as xenapi.json prints it (<c>{}</c>, <c>"()"</c>, <c>1.</c>, <c>{"k" -> "v"}</c>) into JSON.</summary>
    internal static JsonNode FieldDefault(string type, string text)
    {
        var t = XapiType.Parse(type);
        return t switch
        {
            XapiType.Set s => JsonArray(SplitBraces(text).Select(item => FieldDefault(s.Element.ToString(), item))),
            XapiType.Map m => MapDefault(m, text),
            XapiType.Ref => JsonValue.Create(text == "Null" ? "OpaqueRef:NULL" : text),
            XapiType.Primitive { Name: "string" } => JsonValue.Create(Unquote(text)),
            XapiType.Primitive { Name: "int" } => JsonValue.Create(long.Parse(text, CultureInfo.InvariantCulture)),
            XapiType.Primitive { Name: "float" } => JsonValue.Create(double.Parse(text.TrimEnd('.'), CultureInfo.InvariantCulture)),
            XapiType.Primitive { Name: "bool" } => JsonValue.Create(bool.Parse(text)),
            XapiType.Primitive { Name: "datetime" } => JsonValue.Create(text),
            XapiType.Enum => JsonValue.Create(text),
            _ => throw new InvalidDataException($"no default of type {type}: {text}"),
        };
    }

    private static JsonObject MapDefault(XapiType.Map type, string text)
    {
        var map = new JsonObject();
        foreach (var pair in SplitBraces(text))
        {
            var arrow = pair.IndexOf("->", StringComparison.Ordinal);
            map[Unquote(pair[..arrow].Trim())] = FieldDefault(type.Value.ToString(), pair[(arrow + 2)..].Trim());
        }

        return map;
    }

    private static JsonArray JsonArray(IEnumerable<JsonNode> items)
    {
        var array = new JsonArray();
        foreach (var item in items)
        {
            array.Add(item);
        }

        return array;
    }

    private static IEnumerable<string> SplitBraces(string text)
    {
        var inner = text.Trim();
        if (!inner.StartsWith('{') || !inner.EndsWith('}'))
        {
            throw new InvalidDataException($"expected {{...}}, got {text}");
        }

        inner = inner[1..^1].Trim();
        return inner.Length == 0 ? [] : inner.Split(", ").Select(s => s.Trim());
    }

    private static string Unquote(string text) =>
        text.Length >= 2 && text[0] == '"' && text[^1] == '"' ? text[1..^1] : text;
}
