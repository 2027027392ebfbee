using Corral.Cli.Api;
using Corral.Api.Client;

namespace Corral.Cli.Records;

/// <summary>One XenAPI object as the server returned it: its class, its reference and its fields (XenAPI names).</summary>
public sealed class XenRecord(string className, string reference, IReadOnlyDictionary<string, object?> fields)
{
    public string ClassName => className;

    public string Ref => reference;

    public IReadOnlyDictionary<string, object?> Fields => fields;

    public string Uuid => Str("uuid");

    public bool Has(string key) => fields.ContainsKey(key);

    public object? Raw(string key) => fields.GetValueOrDefault(key);

    public string Str(string key) => XenValue.AsString(Raw(key));

    public long Long(string key) => XenValue.AsLong(Raw(key));

    public double Double(string key) => XenValue.AsDouble(Raw(key));

    public bool Bool(string key) => XenValue.AsBool(Raw(key));

    public IReadOnlyList<string> Strings(string key) => XenValue.AsStrings(Raw(key));

    public IReadOnlyList<KeyValuePair<string, string>> Map(string key) => XenValue.AsMap(Raw(key));

    /// <summary>A record built from literal fields (tests, event snapshots).</summary>
    public static XenRecord Of(string className, string reference, IReadOnlyDictionary<string, object?> fields) => new(className, reference, fields);
}
