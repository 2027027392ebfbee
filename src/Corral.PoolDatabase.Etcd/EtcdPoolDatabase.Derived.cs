using Corral.Model;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// Derived fields (<see cref="DerivedFields"/>): filled in on every read and in the change stream from their own keys,
/// and <c>allowed_operations</c> written under its key without touching the object.
/// </summary>
public sealed partial class EtcdPoolDatabase
{
    private const int AllowedWriteAttempts = 20;
    private static readonly EventId AllowedRefused = new(1501, "AllowedOperationsRefused");

    public async Task<long?> SetAllowedOperationsAsync(string className, string reference, IReadOnlyCollection<string> operations, long sourceRevision,
        CancellationToken cancellationToken)
    {
        var schema = XenClasses.Get(className);
        if (!DerivedFields.HasAllowedOperations(schema))
        {
            throw new ArgumentException($"{schema.Name} has no allowed_operations", nameof(className));
        }

        var objectKey = PoolKeys.Object(schema.Name, reference);
        var allowedKey = PoolKeys.AllowedKey(schema.Name, reference);
        for (var attempt = 1; ; attempt++)
        {
            // The object (that it exists) and the stored set, at one revision.
            var read = await _client.TransactionAsync(new TxnRequest
            {
                Success =
                {
                    new RequestOp { RequestRange = new RangeRequest { Key = Bytes(objectKey), KeysOnly = true } },
                    new RequestOp { RequestRange = new RangeRequest { Key = Bytes(allowedKey) } },
                },
            }, deadline: Deadline, cancellationToken: cancellationToken);
            var obj = read.Responses[0].ResponseRange.Kvs.FirstOrDefault() ?? throw XenApiException.HandleInvalid(schema.Name, reference);
            var allowed = read.Responses[1].ResponseRange.Kvs.FirstOrDefault();
            var stored = allowed is null ? AllowedOperationsCodec.Stored.None : AllowedOperationsCodec.Decode(allowed.Value.Span);
            if (stored.SameSet(operations))
            {
                return null;
            }

            if (stored.Source > sourceRevision)
            {
                _logger.LogDebug(AllowedRefused, "{Class} {Ref}: allowed operations computed at revision {Source} refused, the stored ones are from {Stored}",
                    schema.Name, reference, sourceRevision, stored.Source);
                return null;
            }

            // Guarded by the allowed key alone (and the object still being there, so that no key outlives its object):
            // the object's writers never see this write.
            var write = new TxnRequest
            {
                Compare = { CreateRevisionIs(objectKey, obj.CreateRevision), ModRevisionIs(allowedKey, allowed?.ModRevision ?? 0) },
                Success = { Put(allowedKey, AllowedOperationsCodec.Encode(operations, sourceRevision)) },
            };
            var response = await _client.TransactionAsync(write, deadline: Deadline, cancellationToken: cancellationToken);
            if (response.Succeeded)
            {
                return response.Header.Revision;
            }

            if (attempt == AllowedWriteAttempts)
            {
                throw new ConcurrentUpdateException($"allowed operations of {schema.Name} {reference} kept changing while being written");
            }
        }
    }

    /// <summary>A change of a derived field's own key, as a change of its object; null for any other key.</summary>
    private async Task<PoolChange?> TranslateDerivedAsync(Mvccpb.Event ev, string key, bool deleted, CancellationToken cancellationToken)
    {
        if (key.StartsWith(PoolKeys.Live, StringComparison.Ordinal))
        {
            // A liveness lease appearing or expiring is a change of host_metrics.live.
            var metricsRef = key[PoolKeys.Live.Length..];
            var metrics = await TryGetRawAsync(XenClasses.HostMetricsSchema, metricsRef, cancellationToken);
            if (metrics is null)
            {
                return null;
            }

            metrics.Fields[DerivedFields.Live] = !deleted;
            return new PoolChange(ev.Kv.ModRevision, ChangeKind.Mod, metrics) { DerivedField = DerivedFields.Live };
        }

        if (ObjectCodec.TryParseClassKey(PoolKeys.Allowed, key, out var className, out var reference) && XenClasses.Find(className) is { } schema)
        {
            // Read as it is now; an object deleted (its key goes in the same transaction) has its own Del.
            if (await TryGetAsync(schema.Name, reference, cancellationToken) is not { } obj)
            {
                return null;
            }

            var operations = deleted ? [] : AllowedOperationsCodec.Decode(ev.Kv.Value.Span).Operations;
            obj.Fields[DerivedFields.AllowedOperations] = AllowedOperationsCodec.FieldValue(operations);
            return new PoolChange(ev.Kv.ModRevision, ChangeKind.Mod, obj) { DerivedField = DerivedFields.AllowedOperations };
        }

        return null;
    }

    private async Task<XenObject?> TryGetRawAsync(ClassSchema schema, string reference, CancellationToken cancellationToken)
    {
        var response = await _client.GetAsync(new RangeRequest { Key = Bytes(PoolKeys.Object(schema.Name, reference)) },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Kvs.Count == 0 ? null : ObjectCodec.Decode(schema, response.Kvs[0].Value.Span, response.Kvs[0].ModRevision);
    }

    /// <summary>Fills in derived fields: host_metrics.live, allowed_operations, and the reverse links.</summary>
    private async Task<IReadOnlyList<XenObject>> OverlayAsync(IReadOnlyList<XenObject> objects, CancellationToken cancellationToken)
    {
        if (objects.Count == 0)
        {
            return objects;
        }

        var className = objects[0].Class;
        if (className == XenClasses.HostMetrics)
        {
            var live = await _leases.GetPrefixAsync(PoolKeys.Live, cancellationToken);
            foreach (var obj in objects)
            {
                obj.Fields[DerivedFields.Live] = live.ContainsKey(PoolKeys.LiveKey(obj.Ref));
            }
        }

        await OverlayAllowedOperationsAsync(objects, cancellationToken);
        foreach (var link in ReverseLink.Of(className))
        {
            var children = await GetRawAllAsync(XenClasses.Get(link.ChildClass), cancellationToken);
            var byParent = children.ToLookup(c => c.GetString(link.ChildField), c => (object?)c.Ref, StringComparer.Ordinal);
            foreach (var obj in objects)
            {
                obj.Fields[link.Field] = byParent[obj.Ref].ToList();
            }
        }

        return objects;
    }

    /// <summary>Each object's allowed operations from its key (one key read for one object, the class's keys for more); none without one.</summary>
    private async Task OverlayAllowedOperationsAsync(IReadOnlyList<XenObject> objects, CancellationToken cancellationToken)
    {
        var schema = objects[0].Schema;
        if (!DerivedFields.HasAllowedOperations(schema))
        {
            return;
        }

        var range = objects.Count == 1
            ? new RangeRequest { Key = Bytes(PoolKeys.AllowedKey(schema.Name, objects[0].Ref)) }
            : new RangeRequest { Key = Bytes(PoolKeys.AllowedClassPrefix(schema.Name)), RangeEnd = Bytes(PrefixEnd(PoolKeys.AllowedClassPrefix(schema.Name))) };
        var response = await _client.GetAsync(range, deadline: Deadline, cancellationToken: cancellationToken);
        var prefix = PoolKeys.AllowedClassPrefix(schema.Name);
        var byRef = response.Kvs.ToDictionary(kv => kv.Key.ToStringUtf8()[prefix.Length..], kv => AllowedOperationsCodec.Decode(kv.Value.Span).Operations,
            StringComparer.Ordinal);
        foreach (var obj in objects)
        {
            obj.Fields[DerivedFields.AllowedOperations] = AllowedOperationsCodec.FieldValue(byRef.GetValueOrDefault(obj.Ref) ?? []);
        }
    }

    private static Compare CreateRevisionIs(string key, long revision) => new()
    {
        Key = Bytes(key),
        Target = Compare.Types.CompareTarget.Create,
        Result = Compare.Types.CompareResult.Equal,
        CreateRevision = revision,
    };
}
