using System.Text;
using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Messages;

/// <summary>
/// The <c>message</c> class with xapi's semantics: <c>create</c> checks the object the alert is about
/// (UUID_INVALID with its class and uuid), <c>destroy</c> an unknown message is HANDLE_INVALID, <c>get</c> and
/// <c>get_since</c> return the messages newer than a time. Timestamps travel to the second, so "newer than" counts
/// the second named: a client that passes back the timestamp of the last message it saw gets every message of that
/// second again, as xapi (whose timestamps are finer) gives it the ones it could not yet have seen.
/// </summary>
public sealed class MessageMethods(IPoolDatabase database, TimeProvider clock, ILogger<MessageMethods> logger) : IApiMethodProvider
{
    private static readonly EventId MessageCreated = new(1401, "MessageCreated");
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public void Register(ApiRegistry registry)
    {
        registry.Implement("message.create", (_, a, ct) =>
            CreateAsync((string)a[0]!, (long)a[1]!, XenEnum.FromWire<Cls>(XenEnumTypes.Cls, (string)a[2]!), (string)a[3]!, (string)a[4]!, ct));
        registry.Implement("message.destroy", async (_, a, ct) =>
        {
            await DestroyAsync((string)a[0]!, ct);
            return null;
        });
        registry.Implement("message.destroy_many", async (_, a, ct) =>
        {
            // One after the other, as xapi: an unknown reference fails the call, those before it are gone.
            foreach (var reference in ((List<object?>)a[0]!).Cast<string>())
            {
                await DestroyAsync(reference, ct);
            }

            return null;
        });
        registry.Implement("message.get", async (_, a, ct) =>
        {
            var cls = XenEnum.FromWire<Cls>(XenEnumTypes.Cls, (string)a[0]!);
            var uuid = (string)a[1]!;
            if (!await ExistsAsync(cls, uuid, ct))
            {
                throw new XenApiException(ErrorCodes.UuidInvalid);
            }

            return await RecordsAsync(m => m.Get(XenApi.Message.Cls) == cls && m.Get(XenApi.Message.ObjUuid) == uuid, (DateTime)a[2]!, ct);
        });
        registry.Implement("message.get_since", async (_, a, ct) => await RecordsAsync(_ => true, (DateTime)a[0]!, ct));
        registry.Implement("message.get_all_records", async (_, _, ct) => await RecordsAsync(_ => true, null, ct));
        registry.Implement("message.get_all_records_where", async (_, a, ct) =>
        {
            var filter = Query.DbFilter.Parse((string)a[0]!);
            return await RecordsAsync(filter.Matches, null, ct);
        });
        registry.Implement("message.get_all", async (_, _, ct) =>
            (await database.GetAllAsync(XenClasses.Message, ct)).Select(m => (object?)m.Ref).ToList());
        registry.Implement("message.get_record", async (_, a, ct) => (await GetAsync((string)a[0]!, ct)).ToRecord());
        registry.Implement("message.get_by_uuid", async (_, a, ct) =>
        {
            var uuid = (string)a[0]!;
            return (await database.FindByUuidAsync(XenClasses.Message, uuid, ct) ?? throw XenApiException.UuidInvalid(XenClasses.Message, uuid)).Ref;
        });
    }

    private async Task<object?> CreateAsync(string name, long priority, Cls cls, string objectUuid, string body, CancellationToken cancellationToken)
    {
        try
        {
            StrictUtf8.GetByteCount(body);
        }
        catch (EncoderFallbackException)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "UTF8 expected");
        }

        if (!await ExistsAsync(cls, objectUuid, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.UuidInvalid, XenEnum.ToWire(XenEnumTypes.Cls, cls), objectUuid);
        }

        var tx = new PoolTransaction();
        var message = PoolMessages.Create(tx, name, priority, cls, objectUuid, body, clock.GetUtcNow().UtcDateTime);
        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(MessageCreated, "Message {Name} (priority {Priority}) about {Class} {Uuid}", name, priority, cls, objectUuid);
        return message.Ref;
    }

    /// <summary>Whether the object an alert is about exists; none of a class xapi has removed (VMPP) can.</summary>
    private async Task<bool> ExistsAsync(Cls cls, string uuid, CancellationToken cancellationToken) =>
        XenClasses.Find(PoolMessages.ClassOf(cls)) is { } schema && await database.FindByUuidAsync(schema.Name, uuid, cancellationToken) is not null;

    private async Task DestroyAsync(string reference, CancellationToken cancellationToken)
    {
        var message = await GetAsync(reference, cancellationToken);
        var tx = new PoolTransaction();
        tx.Delete(message);
        try
        {
            await database.CommitAsync(tx, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            // Destroyed meanwhile (by another client, or by the collector of old messages): gone either way.
            throw XenApiException.HandleInvalid(XenClasses.Message, reference);
        }
    }

    private async Task<XenObject> GetAsync(string reference, CancellationToken cancellationToken) =>
        await database.GetArgumentAsync(XenClasses.Message, reference, cancellationToken);

    private async Task<Dictionary<string, object?>> RecordsAsync(Func<XenObject, bool> filter, DateTime? since, CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenClasses.Message, cancellationToken))
            .Where(m => filter(m) && (since is null || m.Get(XenApi.Message.Timestamp) >= WholeSecond(since.Value)))
            .ToDictionary(m => m.Ref, m => (object?)m.ToRecord(), StringComparer.Ordinal);

    private static DateTime WholeSecond(DateTime time) => new(time.Ticks - time.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
}
