using Corral.Api.Dispatch;
using Corral.Model;

namespace Corral.Compatibility;

/// <summary>What a datamodel message is for, as the report groups them.</summary>
public enum MessageKind
{
    /// <summary>get_&lt;field&gt;.</summary>
    Getter,

    /// <summary>set_&lt;field&gt;, add_to_/remove_from_&lt;map&gt;, add_/remove_&lt;set&gt;.</summary>
    Setter,

    /// <summary>get_record, get_by_uuid, get_by_name_label, get_all, get_all_records.</summary>
    Lookup,

    /// <summary>create, destroy.</summary>
    Constructor,

    /// <summary>Declared by the class (VM.start, host.evacuate...).</summary>
    Explicit,

    /// <summary>Implicit, but none of the above.</summary>
    Other,
}

public sealed record MessageCoverage(MessageSchema Message, MessageKind Kind, string? Field, bool Implemented)
{
    public bool Removed => Message.Lifecycle == Lifecycle.Removed;
}

/// <summary>One class of the datamodel: each message with whether a handler is bound to it.</summary>
public sealed record ClassCoverage(ClassSchema Class, IReadOnlyList<MessageCoverage> Messages)
{
    private static readonly HashSet<string> Lookups = new(StringComparer.Ordinal)
    {
        "get_record", "get_by_uuid", "get_by_name_label", "get_all", "get_all_records", "get_all_records_where",
    };

    private static readonly string[] SetterPrefixes = ["set_", "add_to_", "remove_from_", "add_", "remove_"];

    /// <summary>Messages still in xapi (removed ones answer MESSAGE_REMOVED and are not counted).</summary>
    public IEnumerable<MessageCoverage> Live => Messages.Where(m => !m.Removed);

    /// <summary>xapi can read objects of this class by reference or uuid (records without identity, like event, cannot).</summary>
    public bool HasLookups => Live.Any(m => m.Kind == MessageKind.Lookup);

    /// <summary>Every lookup xapi has for the class answers (get_all_records, get_record, get_by_uuid...).</summary>
    public bool Readable => HasLookups && Live.Where(m => m.Kind == MessageKind.Lookup).All(m => m.Implemented);

    /// <summary>Each message as the dispatcher binds it: one xapi removed that Corral serves again counts as a live one.</summary>
    public static ClassCoverage Of(ClassSchema schema, ApiRegistry registry) =>
        new(schema, schema.Messages.Select(m => registry.Find(m.WireName) is { } bound
            ? Classify(schema, bound.Schema ?? m, bound.IsImplemented)
            : Classify(schema, m, false)).ToList());

    public IEnumerable<MessageCoverage> ForField(string field, MessageKind kind) => Live.Where(m => m.Field == field && m.Kind == kind);

    public (int Implemented, int Total) Count(MessageKind? kind = null)
    {
        var messages = Live.Where(m => kind is null || m.Kind == kind).ToList();
        return (messages.Count(m => m.Implemented), messages.Count);
    }

    private static MessageCoverage Classify(ClassSchema schema, MessageSchema message, bool implemented)
    {
        // Lookups and constructors by name: some classes declare their own (message.get_all_records, message.create).
        var name = message.Name;
        if (Lookups.Contains(name))
        {
            return new(message, MessageKind.Lookup, null, implemented);
        }

        if (name is "create" or "destroy")
        {
            return new(message, MessageKind.Constructor, null, implemented);
        }

        if (!message.Implicit)
        {
            return new(message, MessageKind.Explicit, null, implemented);
        }

        if (name.StartsWith("get_", StringComparison.Ordinal) && schema.Find(name["get_".Length..]) is not null)
        {
            return new(message, MessageKind.Getter, name["get_".Length..], implemented);
        }

        foreach (var prefix in SetterPrefixes)
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal) && schema.Find(name[prefix.Length..]) is not null)
            {
                return new(message, MessageKind.Setter, name[prefix.Length..], implemented);
            }
        }

        return new(message, MessageKind.Other, null, implemented);
    }
}
