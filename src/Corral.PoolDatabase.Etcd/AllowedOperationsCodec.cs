using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// The value of an object's allowed-operations key (<see cref="PoolKeys.AllowedKey"/>): the operations, as their wire
/// names, and the revision they were computed from: <c>{"source": 42, "operations": ["start", ...]}</c>.
/// </summary>
internal static class AllowedOperationsCodec
{
    public sealed record Stored(long Source, IReadOnlyList<string> Operations)
    {
        public static Stored None { get; } = new(0, []);

        public bool SameSet(IEnumerable<string> operations) => Operations.ToHashSet(StringComparer.Ordinal).SetEquals(operations);
    }

    public static byte[] Encode(IEnumerable<string> operations, long sourceRevision)
    {
        var doc = new JsonObject
        {
            ["source"] = sourceRevision,
            ["operations"] = new JsonArray(operations.Distinct(StringComparer.Ordinal).Select(o => (JsonNode?)JsonValue.Create(o)).ToArray()),
        };
        return Encoding.UTF8.GetBytes(doc.ToJsonString());
    }

    public static Stored Decode(ReadOnlySpan<byte> json)
    {
        var doc = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("allowed operations value is not a JSON object");
        var source = doc["source"]?.GetValue<long>() ?? 0;
        var operations = (doc["operations"] as JsonArray ?? []).Select(n => n?.GetValue<string>() ?? "").Where(o => o.Length > 0).ToList();
        return new Stored(source, operations);
    }

    /// <summary>The set as the object's field value (a set of enum wire values).</summary>
    public static List<object?> FieldValue(IEnumerable<string> operations) => operations.Cast<object?>().ToList();
}
