using System.Collections.Concurrent;
using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Events;

/// <summary>
/// The XenAPI's ways to follow changes: <c>event.from</c> (by token), and the older <c>event.register</c> /
/// <c>event.next</c> / <c>event.unregister</c> (by session), with xapi's handling of subscriptions.
/// </summary>
public sealed class EventMethods(EventHub hub, IPoolDatabase database) : IApiMethodProvider
{
    /// <summary>A session's <c>event.register</c> subscription and how far <c>event.next</c> has read.</summary>
    private sealed class Registration(EventSubscription subscription, long position)
    {
        public EventSubscription Subscription { get; } = subscription;

        public long Position { get; set; } = position;

        public DateTime LastUsed { get; set; } = DateTime.UtcNow;
    }

    private static readonly TimeSpan RegistrationIdle = TimeSpan.FromHours(1);
    private readonly ConcurrentDictionary<string, Registration> _registrations = new(StringComparer.Ordinal);

    public void Register(ApiRegistry registry)
    {
        registry.Implement("event.from", FromAsync);
        registry.Implement("event.get_current_id", async (_, _, ct) =>
        {
            await hub.WaitReadyAsync(ct);
            return EventHub.FormatToken(hub.Revision);
        });
        registry.Implement("event.inject", async (_, a, ct) =>
        {
            // Re-writes the object unchanged so every subscriber sees a "mod" for it, as xapi's inject does.
            var schema = XenClasses.Find((string)a[0]!) ?? throw XenApiException.HandleInvalid((string)a[0]!, (string)a[1]!);
            var revision = await database.UpdateAsync([(schema.Name, (string)a[1]!)], (objs, tx) => tx.Update(objs[0]), ct);
            return EventHub.FormatToken(revision);
        });
        registry.Implement("event.register", RegisterAsync);
        registry.Implement("event.unregister", (ctx, a, _) =>
        {
            if (_registrations.TryGetValue(ctx.SessionRef, out var registration))
            {
                lock (registration)
                {
                    registration.Subscription.Remove(Strings(a[0]));
                }
            }

            return Task.FromResult<object?>(null);
        });
        registry.Implement("event.next", NextAsync);
    }

    private static List<string> Strings(object? set) => ((List<object?>)set!).Select(c => (string)c!).ToList();

    private async Task<object?> FromAsync(CallContext context, object?[] arguments, CancellationToken cancellationToken)
    {
        var subscription = new EventSubscription(Strings(arguments[0]));
        var token = (string)arguments[1]!;
        var timeout = TimeSpan.FromSeconds(Math.Clamp((double)arguments[2]!, 0, 600));
        await hub.WaitReadyAsync(cancellationToken);

        List<object?> events;
        long revision;
        if (string.IsNullOrEmpty(token))
        {
            // No token: the current state of every subscribed object, as "add" events, then a token to follow on from.
            revision = hub.Revision;
            events = [];
            foreach (var schema in subscription.Classes)
            {
                foreach (var obj in await database.GetAllAsync(schema.Name, cancellationToken))
                {
                    if (subscription.Matches(obj))
                    {
                        events.Add(EventRecord(revision, ChangeKind.Add, obj));
                    }
                }
            }
        }
        else
        {
            if (!EventHub.TryParseToken(token, out var after))
            {
                throw new XenApiException(ErrorCodes.EventFromTokenParseFailure, token);
            }

            (events, revision) = await WaitForEventsAsync(subscription, after, timeout, cancellationToken);
        }

        var classes = subscription.Classes.ToList();
        var counts = await Task.WhenAll(classes.Select(c => database.CountAsync(c.Name, cancellationToken)));
        return new Dictionary<string, object?>
        {
            ["events"] = events,
            ["valid_ref_counts"] = classes.Zip(counts).ToDictionary(x => x.First.Name.ToLowerInvariant(), x => (object?)x.Second),
            ["token"] = EventHub.FormatToken(revision),
        };
    }

    /// <summary>The subscribed changes after <paramref name="after"/>, waiting up to <paramref name="timeout"/> for the first.</summary>
    private async Task<(List<object?> Events, long Revision)> WaitForEventsAsync(EventSubscription subscription, long after, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            var (changes, current, more) = hub.ChangesAfter(after);
            var events = Collapse(changes, subscription).Select(c => (object?)EventRecord(c.Revision, c.Kind, c.Object)).ToList();
            if (events.Count > 0 || deadline.IsCancellationRequested)
            {
                return (events, current);
            }

            after = current;
            try
            {
                await more.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return ([], hub.Revision);
            }
        }
    }

    /// <summary>The subscribed changes, repeated changes of one object collapsed into its latest, as xapi does.</summary>
    private static IEnumerable<PoolChange> Collapse(IEnumerable<PoolChange> changes, EventSubscription subscription)
    {
        var latest = new Dictionary<string, PoolChange>(StringComparer.Ordinal);
        foreach (var change in changes.Where(c => subscription.Matches(c.Object)))
        {
            latest[change.Object.Ref] = change;
        }

        return latest.Values.OrderBy(c => c.Revision);
    }

    private async Task<object?> RegisterAsync(CallContext context, object?[] arguments, CancellationToken cancellationToken)
    {
        await hub.WaitReadyAsync(cancellationToken);
        foreach (var idle in _registrations.Where(r => DateTime.UtcNow - r.Value.LastUsed > RegistrationIdle).ToList())
        {
            _registrations.TryRemove(idle);
        }

        var registration = _registrations.GetOrAdd(context.SessionRef, _ => new Registration(new EventSubscription([]), hub.Revision));
        lock (registration)
        {
            registration.Subscription.Add(Strings(arguments[0]));
            registration.LastUsed = DateTime.UtcNow;
        }

        return null;
    }

    /// <summary>Blocks until a registered class changes, then returns those changes since the last call.</summary>
    private async Task<object?> NextAsync(CallContext context, object?[] arguments, CancellationToken cancellationToken)
    {
        if (!_registrations.TryGetValue(context.SessionRef, out var registration))
        {
            throw new XenApiException(ErrorCodes.SessionNotRegistered, context.SessionRef);
        }

        while (true)
        {
            long position;
            EventSubscription subscription;
            lock (registration)
            {
                position = registration.Position;
                subscription = registration.Subscription;
                registration.LastUsed = DateTime.UtcNow;
            }

            var (changes, current, more) = hub.ChangesAfter(position);
            var events = changes.Where(c => subscription.Matches(c.Object)).Select(c => (object?)NextRecord(c)).ToList();
            lock (registration)
            {
                registration.Position = current;
            }

            if (events.Count > 0)
            {
                return events;
            }

            await more.WaitAsync(cancellationToken);
        }
    }

    private static Dictionary<string, object?> EventRecord(long revision, ChangeKind kind, XenObject obj) => new()
    {
        ["id"] = EventHub.FormatToken(revision),
        ["timestamp"] = XenDateTime.Format(DateTime.UtcNow),
        ["class"] = obj.Class.ToLowerInvariant(),
        ["operation"] = kind.ToString().ToLowerInvariant(),
        ["ref"] = obj.Ref,
        ["snapshot"] = obj.ToRecord(),
    };

    /// <summary>An <c>event.next</c> record: as <c>event.from</c>'s, with the object's uuid as the event class has it.</summary>
    private static Dictionary<string, object?> NextRecord(PoolChange change)
    {
        var record = EventRecord(change.Revision, change.Kind, change.Object);
        record["obj_uuid"] = change.Object.Schema.Find("uuid") is null ? "" : change.Object.Uuid;
        return record;
    }
}
