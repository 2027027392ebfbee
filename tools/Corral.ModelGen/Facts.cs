using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Corral.ModelGen;

/// <summary>
/// The facts of xapi's datamodel that Corral's model is generated from: classes, fields (type, qualifier, default),
/// enums, and messages (parameters with their defaults, result, errors, roles). No descriptions: only what a client
/// and a server must agree on to talk. Checked in as <c>datamodel/xapi-datamodel.json</c>.
/// </summary>
public sealed record DatamodelFacts(
    string Source,
    IReadOnlyList<ClassFacts> Classes,
    IReadOnlyList<EnumFacts> Enums)
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static DatamodelFacts Load(string path) =>
        JsonSerializer.Deserialize<DatamodelFacts>(File.ReadAllText(path), Options)
        ?? throw new InvalidDataException($"{path} holds no datamodel");

    /// <summary>The facts as JSON with one line per enum, field and message, so that a refresh reads as a short diff.</summary>
    public string ToJson()
    {
        string C<T>(T value) => JsonSerializer.Serialize(value, Options);
        var s = new System.Text.StringBuilder();
        s.Append("{\n  \"source\": ").Append(C(Source)).Append(",\n  \"enums\": [\n");
        s.AppendJoin(",\n", Enums.Select(e => "    " + C(e))).Append("\n  ],\n  \"classes\": [\n");
        s.AppendJoin(",\n", Classes.Select(c =>
            $"    {{\n      \"name\": {C(c.Name)},\n      \"state\": {C(c.State)},\n      \"fields\": [\n"
            + string.Join(",\n", c.Fields.Select(f => "        " + C(f)))
            + "\n      ],\n      \"messages\": [\n"
            + string.Join(",\n", c.Messages.Select(m => "        " + C(m)))
            + "\n      ]\n    }"));
        return s.Append("\n  ]\n}\n").ToString();
    }
}

/// <summary>A class; <see cref="State"/> is xapi's lifecycle state: published, deprecated, prototyped or removed.</summary>
public sealed record ClassFacts(string Name, string State, IReadOnlyList<FieldFacts> Fields, IReadOnlyList<MessageFacts> Messages);

/// <summary>A field: its xapi type (<c>VM ref set</c>, <c>(string -> string) map</c>), qualifier and default.</summary>
/// <param name="Qualifier"><c>RO/runtime</c>, <c>RO/constructor</c> or <c>RW</c>.</param>
/// <param name="Default">The default as a JSON value of the field's type; null when the datamodel gives none.</param>
public sealed record FieldFacts(string Name, string Type, string Qualifier, JsonNode? Default = null);

/// <summary>A message. <see cref="Session"/>: its first wire argument is the session. Parameters leave the session out.</summary>
public sealed record MessageFacts(
    string Name,
    bool Session,
    IReadOnlyList<ParameterFacts> Parameters,
    string Result,
    IReadOnlyList<string> Errors,
    IReadOnlyList<string> Roles,
    bool Implicit,
    string State);

/// <summary>A parameter; <see cref="Default"/> set means a caller may leave it (and every later one) off the wire.</summary>
public sealed record ParameterFacts(string Name, string Type, JsonNode? Default = null);

public sealed record EnumFacts(string Name, IReadOnlyList<string> Values);
