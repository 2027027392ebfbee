using System.Runtime.CompilerServices;
using System.Text;
using Corral.Model;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// The pool database on etcd. Each object is one key (<see cref="PoolKeys.Object"/>); a uuid index and a ref index
/// are written in the same transaction. Writes compare the mod revision the writer read, so a stale writer fails
/// instead of overwriting. Derived fields (<see cref="DerivedFields"/>) are not in the object's key: they are filled
/// in from their own keys on read (EtcdPoolDatabase.Derived.cs).
/// </summary>
public sealed partial class EtcdPoolDatabase : IPoolDatabase, IDisposable
{
    private readonly EtcdClient _client;
    private readonly Grpc.Net.Client.GrpcChannel _channel;
    private readonly EtcdOptions _options;
    private readonly ILogger<EtcdPoolDatabase> _logger;
    private readonly EtcdLeaseStore _leases;

    public EtcdPoolDatabase(IOptions<EtcdOptions> options, ILogger<EtcdPoolDatabase> logger, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _logger = logger;
        Endpoints = new EtcdEndpoints(_options.Endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries));
        _channel = Endpoints.CreateChannel(o => o.MaxReceiveMessageSize = 256 * 1024 * 1024,
            _options.CertificateDirectory.Length > 0 ? new Tls.EtcdTlsFiles(_options.CertificateDirectory) : null);
        _client = new EtcdClient(_channel.CreateCallInvoker().Intercept(new DeadlineAsUnavailable()));
        _leases = new EtcdLeaseStore(_client, _options, loggerFactory.CreateLogger<EtcdLeaseStore>());
    }

    public ILeaseStore Leases => _leases;

    /// <summary>The endpoints this database's connection uses, in order of preference.</summary>
    public EtcdEndpoints Endpoints { get; }

    /// <summary>
    /// Reads the cluster's member list and makes the connection's endpoints follow it (a member added or removed), this
    /// host's own member first. Returns the endpoints if they changed, null if not.
    /// </summary>
    public async Task<IReadOnlyList<string>?> RefreshEndpointsAsync(CancellationToken cancellationToken)
    {
        var members = await CreateClusterAdmin(_logger).ListAsync(cancellationToken);
        var ordered = EtcdEndpoints.Order(Endpoints.Configured, members, _options.Member.Enabled ? _options.Member.ClientUrl : null);
        if (!Endpoints.Update(ordered))
        {
            return null;
        }

        _logger.LogInformation("etcd endpoints: {Endpoints}", string.Join(", ", ordered));
        return ordered;
    }

    public bool IsUnavailable(Exception exception) => exception is RpcException
    {
        StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded,
    } || (exception.InnerException is { } inner && IsUnavailable(inner));

    internal EtcdClient Client => _client;

    private DateTime Deadline => DateTime.UtcNow + _options.RequestTimeout;

    public async Task<long> GetRevisionAsync(CancellationToken cancellationToken)
    {
        var response = await _client.GetAsync(new RangeRequest { Key = Bytes(PoolKeys.Root), CountOnly = true },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Header.Revision;
    }

    public async Task<XenObject?> TryGetAsync(string className, string reference, CancellationToken cancellationToken)
    {
        var schema = XenClasses.Get(className);
        var response = await _client.GetAsync(new RangeRequest { Key = Bytes(PoolKeys.Object(schema.Name, reference)) },
            deadline: Deadline, cancellationToken: cancellationToken);
        if (response.Kvs.Count == 0)
        {
            return null;
        }

        var kv = response.Kvs[0];
        var obj = ObjectCodec.Decode(schema, kv.Value.Span, kv.ModRevision);
        await OverlayAsync([obj], cancellationToken);
        return obj;
    }

    public async Task<XenObject> GetAsync(string className, string reference, CancellationToken cancellationToken) =>
        await TryGetAsync(className, reference, cancellationToken)
        ?? throw XenApiException.HandleInvalid(XenClasses.Get(className).Name, reference);

    public async Task<IReadOnlyList<XenObject>> GetAllAsync(string className, CancellationToken cancellationToken)
    {
        var schema = XenClasses.Get(className);
        var objects = await GetRawAllAsync(schema, cancellationToken);
        return await OverlayAsync(objects, cancellationToken);
    }

    public async Task<XenObject?> FindByUuidAsync(string className, string uuid, CancellationToken cancellationToken)
    {
        var schema = XenClasses.Get(className);
        var target = await _client.GetValAsync(PoolKeys.Uuid(uuid), deadline: Deadline, cancellationToken: cancellationToken);
        var slash = target?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (slash <= 0 || target![..slash] != schema.Name)
        {
            return null;
        }

        return await TryGetAsync(schema.Name, target[(slash + 1)..], cancellationToken);
    }

    public async Task<string?> FindClassOfAsync(string reference, CancellationToken cancellationToken)
    {
        var value = await _client.GetValAsync(PoolKeys.RefClass(reference), deadline: Deadline, cancellationToken: cancellationToken);
        return string.IsNullOrEmpty(value) ? null : value;
    }

    public async Task<long> CommitAsync(PoolTransaction transaction, CancellationToken cancellationToken)
    {
        var request = new TxnRequest();
        foreach (var (key, revision) in transaction.Guards)
        {
            request.Compare.Add(ModRevisionIs(key, revision));
        }

        foreach (var write in transaction.Writes)
        {
            var obj = write.Object;
            var key = PoolKeys.Object(obj.Class, obj.Ref);
            switch (write.Kind)
            {
                case PoolWriteKind.Create:
                    request.Compare.Add(ModRevisionIs(key, 0));
                    request.Compare.Add(ModRevisionIs(PoolKeys.Uuid(obj.Uuid), 0));
                    request.Success.Add(Put(key, ObjectCodec.Encode(obj)));
                    request.Success.Add(Put(PoolKeys.Uuid(obj.Uuid), Encoding.UTF8.GetBytes($"{obj.Class}/{obj.Ref}")));
                    request.Success.Add(Put(PoolKeys.RefClass(obj.Ref), Encoding.UTF8.GetBytes(obj.Class)));
                    break;
                case PoolWriteKind.Update:
                    request.Compare.Add(ModRevisionIs(key, obj.ModRevision));
                    request.Success.Add(Put(key, ObjectCodec.Encode(obj)));
                    break;
                case PoolWriteKind.Delete:
                    request.Compare.Add(ModRevisionIs(key, obj.ModRevision));
                    request.Success.Add(Delete(key));
                    request.Success.Add(Delete(PoolKeys.Uuid(obj.Uuid)));
                    request.Success.Add(Delete(PoolKeys.RefClass(obj.Ref)));
                    // Its derived state goes with it (a key that was never written deletes nothing).
                    request.Success.Add(Delete(PoolKeys.AllowedKey(obj.Class, obj.Ref)));
                    break;
                default:
                    throw new InvalidOperationException(write.Kind.ToString());
            }
        }

        foreach (var write in transaction.KeyWrites)
        {
            request.Success.Add(write.Value is null ? Delete(write.Key)
                : new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(write.Key), Value = ByteString.CopyFromUtf8(write.Value), Lease = write.LeaseId } });
        }

        var response = await _client.TransactionAsync(request, deadline: Deadline, cancellationToken: cancellationToken);
        if (!response.Succeeded)
        {
            throw new ConcurrentUpdateException("an object changed since it was read");
        }

        return response.Header.Revision;
    }

    public async Task<long> UpdateAsync(IReadOnlyList<(string ClassName, string Reference)> objects,
        Action<IReadOnlyList<XenObject>, PoolTransaction> mutate, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var current = new List<XenObject>(objects.Count);
            foreach (var (className, reference) in objects)
            {
                current.Add(await GetAsync(className, reference, cancellationToken));
            }

            var transaction = new PoolTransaction();
            mutate(current, transaction);
            if (transaction.IsEmpty)
            {
                return current.Count == 0 ? 0 : current.Max(o => o.ModRevision);
            }

            try
            {
                return await CommitAsync(transaction, cancellationToken);
            }
            catch (ConcurrentUpdateException) when (attempt < 50)
            {
                _logger.LogDebug("Write conflict on {Objects}, attempt {Attempt}; retrying", string.Join(",", objects.Select(o => o.Reference)), attempt);
                await Task.Delay(Random.Shared.Next(1, 10 * attempt), cancellationToken);
            }
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<PoolChange>> WatchAsync(long afterRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = _client.GetConnection().WatchClient.Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest
            {
                Key = Bytes(PoolKeys.Root),
                RangeEnd = Bytes(PrefixEnd(PoolKeys.Root)),
                StartRevision = afterRevision + 1,
                PrevKv = true,
            },
        }, cancellationToken);

        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var response = call.ResponseStream.Current;
            if (response.CompactRevision > 0)
            {
                throw new XenApiException(ErrorCodes.EventsLost);
            }

            if (response.Canceled)
            {
                throw new RpcException(new Status(StatusCode.Aborted, "etcd cancelled the watch: " + response.CancelReason));
            }

            // etcd sends all events of a revision in one response, so a batch never splits a transaction.
            var batch = new List<PoolChange>(response.Events.Count);
            foreach (var ev in response.Events)
            {
                var change = await TranslateAsync(ev, cancellationToken);
                if (change is not null)
                {
                    batch.Add(change);
                }
            }

            if (batch.Count > 0)
            {
                yield return batch;
            }
        }
    }

    private async Task<PoolChange?> TranslateAsync(Mvccpb.Event ev, CancellationToken cancellationToken)
    {
        var key = ev.Kv.Key.ToStringUtf8();
        var revision = ev.Kv.ModRevision;
        var deleted = ev.Type == Mvccpb.Event.Types.EventType.Delete;
        if (ObjectCodec.TryParseObjectKey(key, out var className, out _))
        {
            var schema = XenClasses.Find(className);
            if (schema is null)
            {
                return null;
            }

            var source = deleted ? ev.PrevKv : ev.Kv;
            if (source is null || source.Value.IsEmpty)
            {
                return null;
            }

            var obj = ObjectCodec.Decode(schema, source.Value.Span, source.ModRevision);
            await OverlayAsync([obj], cancellationToken);

            var kind = deleted ? ChangeKind.Del : ev.Kv.CreateRevision == ev.Kv.ModRevision ? ChangeKind.Add : ChangeKind.Mod;
            return new PoolChange(revision, kind, obj);
        }

        return await TranslateDerivedAsync(ev, key, deleted, cancellationToken);
    }

    public async Task<long> CountAsync(string className, CancellationToken cancellationToken)
    {
        var prefix = PoolKeys.ClassPrefix(XenClasses.Get(className).Name);
        var response = await _client.GetAsync(new RangeRequest { Key = Bytes(prefix), RangeEnd = Bytes(PrefixEnd(prefix)), CountOnly = true },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Count;
    }

    private async Task<List<XenObject>> GetRawAllAsync(ClassSchema schema, CancellationToken cancellationToken)
    {
        var prefix = PoolKeys.ClassPrefix(schema.Name);
        var response = await _client.GetAsync(new RangeRequest { Key = Bytes(prefix), RangeEnd = Bytes(PrefixEnd(prefix)) },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Kvs.Select(kv => ObjectCodec.Decode(schema, kv.Value.Span, kv.ModRevision)).ToList();
    }

    internal static ByteString Bytes(string text) => ByteString.CopyFromUtf8(text);

    /// <summary>The first key after every key that starts with <paramref name="prefix"/>.</summary>
    internal static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    private static Compare ModRevisionIs(string key, long revision) => new()
    {
        Key = Bytes(key),
        Target = Compare.Types.CompareTarget.Mod,
        Result = Compare.Types.CompareResult.Equal,
        ModRevision = revision,
    };

    private static RequestOp Put(string key, byte[] value) =>
        new() { RequestPut = new PutRequest { Key = Bytes(key), Value = ByteString.CopyFrom(value) } };

    private static RequestOp Delete(string key) => new() { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(key) } };

    /// <summary>The cluster's membership API over this database's connection.</summary>
    public Membership.EtcdClusterAdmin CreateClusterAdmin(ILogger logger) => new(_client, logger);

    public void Dispose()
    {
        _leases.Dispose();
        _client.Dispose();
        _channel.Dispose();
    }
}
