using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's event-wait: returns once some object of the class satisfies every <c>param=value</c> (or <c>param=/=value</c>
/// for "differs") on the printed values of its parameters. It checks the current objects first, then follows
/// <c>event.from</c> on the class (and on the classes those parameters read, such as host_metrics for
/// host-metrics-live), checking each changed object and the class again.
/// </summary>
public static class EventCommands
{
    public static void Register(CommandRegistry r) =>
        r.Add(new("event-wait", ["class"], [], "Wait for the event that satisfies the conditions given on the command line.",
            CommandFlags.None, WaitAsync));

    private static async Task WaitAsync(CommandContext c, CancellationToken ct)
    {
        var className = c.Params.Required("class");
        var cls = className is "vm" or "vdi" or "sr" or "host" or "network" or "vif" or "pif" or "vbd" or "pbd" or "pool" or "task"
            ? XeClasses.Get(className)
            : throw new XeFailure($"Cli listening for class '{className}' not currently implemented");
        var conditions = c.Params.All.Where(p => p.Key != "class" && !XeParams.StandardParams.Contains(p.Key))
            .Select(p => p.Value.StartsWith("/=", StringComparison.Ordinal) ? (p.Key, Value: p.Value[2..], Equal: false) : (p.Key, p.Value, Equal: true))
            .ToList();
        var fields = conditions.Select(cond => (cond, Field: cls.Find(cond.Key))).ToList();

        async Task<bool> MatchesAsync(XenRecord record)
        {
            foreach (var (cond, field) in fields)
            {
                if (field is null)
                {
                    throw new XeFailure($"key missing: {cond.Key}");
                }

                var value = await c.Records.ValueAsync(record, field, ct);
                if ((value == cond.Value) != cond.Equal)
                {
                    return false;
                }
            }

            return true;
        }

        async Task<bool> PollAsync()
        {
            var related = fields.Where(f => f.Field is not null).SelectMany(f => f.Field!.Needs).Select(n => n.ClassName);
            foreach (var loaded in related.Append(cls.ApiClass))
            {
                c.Cache.Forget(loaded);
            }

            var records = await c.Cache.AllAsync(cls.ApiClass, ct);
            await c.Records.PrepareAsync(records, fields.Where(f => f.Field is not null).Select(f => f.Field!), ct);
            foreach (var record in records)
            {
                if (await MatchesAsync(record))
                {
                    return true;
                }
            }

            return false;
        }

        if (await PollAsync())
        {
            return;
        }

        var classes = fields.Where(f => f.Field is not null).SelectMany(f => f.Field!.Needs).Select(n => n.ClassName)
            .Prepend(cls.ApiClass).Distinct(StringComparer.Ordinal).Select(n => (object?)n).ToList();
        var token = "";
        while (true)
        {
            var from = XenValue.AsRecord(await c.CallAsync("event.from", ct, classes, token, 30.0));
            token = XenValue.AsString(from.GetValueOrDefault("token"));
            var events = XenValue.AsList(from.GetValueOrDefault("events")).Select(XenValue.AsRecord).ToList();
            if (events.Count == 0)
            {
                continue;
            }

            foreach (var e in events)
            {
                if (XenValue.AsString(e.GetValueOrDefault("class")).Equals(cls.ApiClass, StringComparison.OrdinalIgnoreCase)
                    && e.GetValueOrDefault("snapshot") is IReadOnlyDictionary<string, object?> snapshot
                    && await MatchesAsync(new XenRecord(cls.ApiClass, XenValue.AsString(e.GetValueOrDefault("ref")), snapshot)))
                {
                    return;
                }
            }

            if (await PollAsync())
            {
                return;
            }
        }
    }
}
