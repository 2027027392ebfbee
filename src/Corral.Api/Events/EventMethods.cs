using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Events;

/// <summary><c>event.from</c>: the XenAPI's way to follow every change, by token.</summary>
public sealed class EventMethods(EventHub hub, IPoolDatabase database) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("event.from", FromAsync, ("classes", FieldType.StringSet), ("token", FieldType.String), ("timeout", FieldType.Float));
        registry.Add("event.get_current_id", async (_, _, ct) =>
        {
            await hub.WaitReadyAsync(ct).ConfigureAwait(false);
            return EventHub.FormatToken(hub.Revision);
        });
        registry.Add("event.inject", async (_, a, ct) =>
        {
            // Re-writes the object unchanged so every subscriber sees a "mod" for it, as xapi's inject does.
            var schema = XenClasses.Find((string)a[0]!) ?? throw new XenApiException(ErrorCodes.EventSubscriptionParseFailure, (string)a[0]!);
            var revision = await database.UpdateAsync([(schema.Name, (string)a[1]!)], (objs, tx) => tx.Update(objs[0]), ct).ConfigureAwait(false);
            return EventHub.FormatToken(revision);
        }, ("class", FieldType.String), ("ref", FieldType.String));
    }

    private async Task<object?> FromAsync(CallContext context, object?[] arguments, CancellationToken cancellationToken)
    {
        var classes = ((List<object?>)arguments[0]!).Select(c => (string)c!).ToList();
        var token = (string)arguments[1]!;
        var timeout = TimeSpan.FromSeconds(Math.Clamp((double)arguments[2]!, 0, 600));
        var wanted = ParseClasses(classes);
        await hub.WaitReadyAsync(cancellationToken).ConfigureAwait(false);

        var events = new List<object?>();
        long revision;
        if (string.IsNullOrEmpty(token))
        {
            // No token: the current state of every subscribed object, as "add" events, then a token to follow on from.
            revision = hub.Revision;
            foreach (var schema in wanted.Select(XenClasses.Get))
            {
                foreach (var obj in await database.GetAllAsync(schema.Name, cancellationToken).ConfigureAwait(false))
                {
                    events.Add(EventRecord(revision, "add", obj));
                }
            }
        }
        else
        {
            if (!EventHub.TryParseToken(token, out var after))
            {
                throw new XenApiException(ErrorCodes.EventFromTokenParseFailure, token);
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            while (true)
            {
                var (changes, current, more) = hub.ChangesAfter(after);
                // Collapse repeated changes of one object into its latest, as xapi does.
                var latest = new Dictionary<string, PoolChange>(StringComparer.Ordinal);
                foreach (var change in changes.Where(c => wanted.Contains(c.Object.Class)))
                {
                    latest[change.Object.Ref] = change;
                }

                revision = current;
                foreach (var change in latest.Values.OrderBy(c => c.Revision))
                {
                    events.Add(EventRecord(change.Revision, change.Kind.ToString().ToLowerInvariant(), change.Object));
                }

                if (events.Count > 0 || deadline.IsCancellationRequested)
                {
                    break;
                }

                after = current;
                try
                {
                    await more.WaitAsync(deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    revision = hub.Revision;
                    break;
                }
            }
        }

        var counts = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var schema in wanted.Select(XenClasses.Get))
        {
            counts[schema.Name.ToLowerInvariant()] = (long)(await database.GetAllAsync(schema.Name, cancellationToken).ConfigureAwait(false)).Count;
        }

        return new Dictionary<string, object?>
        {
            ["events"] = events,
            ["valid_ref_counts"] = counts,
            ["token"] = EventHub.FormatToken(revision),
        };
    }

    private static HashSet<string> ParseClasses(List<string> classes)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in classes)
        {
            if (name == "*")
            {
                wanted.UnionWith(XenClasses.All.Where(c => c.Name != XenClasses.Session).Select(c => c.Name));
                continue;
            }

            // "vm/OpaqueRef:..." subscribes to one object in xapi; Corral narrows by class only.
            var className = name.Split('/')[0];
            var schema = XenClasses.Find(className) ?? throw new XenApiException(ErrorCodes.EventSubscriptionParseFailure, name);
            wanted.Add(schema.Name);
        }

        return wanted;
    }

    private static Dictionary<string, object?> EventRecord(long revision, string operation, XenObject obj) => new()
    {
        ["id"] = EventHub.FormatToken(revision),
        ["timestamp"] = XenDateTime.Format(DateTime.UtcNow),
        ["class"] = obj.Class.ToLowerInvariant(),
        ["operation"] = operation,
        ["ref"] = obj.Ref,
        ["snapshot"] = obj.ToRecord(),
    };
}
