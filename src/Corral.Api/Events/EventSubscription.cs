using Corral.Model;

namespace Corral.Api.Events;

/// <summary>
/// What an event caller subscribed to, parsed as xapi parses it: <c>*</c> (every class that has events), a class name
/// in any case (<c>vm</c>, <c>VM</c>), or one object (<c>vm/OpaqueRef:...</c>). A class the pool does not know is
/// accepted and matches nothing, as in xapi (Xen Orchestra subscribes to every class <c>system.listMethods</c> names).
/// </summary>
public sealed class EventSubscription
{
    /// <summary>
    /// Classes xapi never sends events for (not in its database, or not shown: sessions carry secrets). Roles are
    /// static in xapi, never in its database, so it sends none for them either.
    /// </summary>
    private static readonly HashSet<string> Silent = new(StringComparer.Ordinal)
    {
        XenClasses.Session, "user", "event", "auth", "data_source", "sr_stat", "probe_result", "vdi_nbd_server_info", XenApi.Role.ClassName,
    };

    private readonly HashSet<string> _classes = new(StringComparer.Ordinal);
    private readonly HashSet<(string Class, string Ref)> _objects = [];

    public EventSubscription(IEnumerable<string> subscriptions) => Add(subscriptions);

    /// <summary>Every class with events, in the datamodel's spelling.</summary>
    public static IReadOnlyList<ClassSchema> EventClasses { get; } = XenClasses.All.Where(c => !Silent.Contains(c.Name)).ToList();

    /// <summary>The classes with events that this subscription reads, whole or in part.</summary>
    public IEnumerable<ClassSchema> Classes =>
        EventClasses.Where(c => _classes.Contains(c.Name) || _objects.Any(o => o.Class == c.Name));

    /// <exception cref="XenApiException">EVENT_SUBSCRIPTION_PARSE_FAILURE for a malformed entry.</exception>
    public void Add(IEnumerable<string> subscriptions)
    {
        foreach (var entry in subscriptions)
        {
            if (entry == "*")
            {
                _classes.UnionWith(EventClasses.Select(c => c.Name));
                continue;
            }

            var parts = entry.Split('/', 2);
            if (parts[0].Length == 0 || (parts.Length == 2 && parts[1].Length == 0))
            {
                throw new XenApiException(ErrorCodes.EventSubscriptionParseFailure, entry);
            }

            if (XenClasses.Find(parts[0]) is not { } schema || Silent.Contains(schema.Name))
            {
                continue;
            }

            if (parts.Length == 1)
            {
                _classes.Add(schema.Name);
            }
            else
            {
                _objects.Add((schema.Name, parts[1]));
            }
        }
    }

    public void Remove(IEnumerable<string> subscriptions)
    {
        var other = new EventSubscription(subscriptions);
        _classes.ExceptWith(other._classes);
        _objects.ExceptWith(other._objects);
    }

    public bool IsEmpty => _classes.Count == 0 && _objects.Count == 0;

    public bool Matches(XenObject obj) => _classes.Contains(obj.Class) || _objects.Contains((obj.Class, obj.Ref));
}
