using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Corral.Model;

namespace Corral.PoolDatabase.Etcd;

/// <summary>Objects are stored as one JSON document per object: <c>{"ref": ..., "fields": {...}}</c>.</summary>
internal static class ObjectCodec
{
    public static byte[] Encode(XenObject obj)
    {
        var fields = new JsonObject();
        var derived = DerivedFields.Of(obj.Schema);
        foreach (var field in obj.Schema.Fields)
        {
            // Derived fields are kept apart and filled in on read; storing them would only let them go stale.
            if (!derived.Contains(field.Name))
            {
                fields[field.Name] = field.Type.ToJson(obj[field.Name]);
            }
        }

        var doc = new JsonObject { ["ref"] = obj.Ref, ["fields"] = fields };
        return Encoding.UTF8.GetBytes(doc.ToJsonString());
    }

    public static XenObject Decode(ClassSchema schema, ReadOnlySpan<byte> json, long modRevision)
    {
        var doc = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("object document is not a JSON object");
        var reference = doc["ref"]?.GetValue<string>() ?? throw new JsonException("object document has no ref");
        var fields = doc["fields"] as JsonObject ?? [];
        var values = new Dictionary<string, object?>(schema.Fields.Count, StringComparer.Ordinal);
        var derived = DerivedFields.Of(schema);
        foreach (var field in schema.Fields)
        {
            // Fields added to the schema after the object was written take their defaults; so do derived fields (an
            // object written before a field became derived may still hold a value: the overlay on read replaces it).
            values[field.Name] = !derived.Contains(field.Name) && fields.TryGetPropertyValue(field.Name, out var node)
                ? field.Type.FromJson(node)
                : field.NewDefault();
        }

        return new XenObject(schema, reference, values, modRevision);
    }

    /// <summary>Splits <c>/corral/objects/&lt;class&gt;/&lt;ref&gt;</c>.</summary>
    public static bool TryParseObjectKey(string key, out string className, out string reference) =>
        TryParseClassKey(PoolKeys.Objects, key, out className, out reference);

    /// <summary>Splits <c>&lt;prefix&gt;&lt;class&gt;/&lt;ref&gt;</c> (an object's key, or one of its derived keys).</summary>
    public static bool TryParseClassKey(string prefix, string key, out string className, out string reference)
    {
        className = reference = "";
        if (!key.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = key.AsSpan(prefix.Length);
        var slash = rest.IndexOf('/');
        if (slash <= 0)
        {
            return false;
        }

        className = rest[..slash].ToString();
        reference = rest[(slash + 1)..].ToString();
        return true;
    }
}
