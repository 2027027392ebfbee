using System.Text;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Corral.PoolDatabase.Etcd;

/// <summary>Leases and leased keys on etcd.</summary>
internal sealed class EtcdLeaseStore(EtcdClient client, EtcdOptions options, ILogger<EtcdLeaseStore> logger) : ILeaseStore, IDisposable
{
    private readonly CancellationTokenSource _disposed = new();

    private DateTime Deadline => DateTime.UtcNow + options.RequestTimeout;

    public async Task<ILease> AcquireAsync(TimeSpan ttl, TimeSpan keepAliveEvery, CancellationToken cancellationToken)
    {
        var sent = MonotonicTime.Now;
        var grant = await client.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) },
            deadline: Deadline, cancellationToken: cancellationToken);
        var lease = new EtcdLease(client, grant.ID, TimeSpan.FromSeconds(grant.TTL), keepAliveEvery, sent, options, logger, _disposed.Token);
        lease.Start();
        return lease;
    }

    public async Task<ILease?> ResumeAsync(long leaseId, TimeSpan keepAliveEvery, CancellationToken cancellationToken)
    {
        var sent = MonotonicTime.Now;
        var answer = await client.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = leaseId },
            deadline: Deadline, cancellationToken: cancellationToken);
        if (answer.TTL <= 0)
        {
            return null;
        }

        // What remains of the lease counts from the request's send time, as a keepalive's TTL does.
        var lease = new EtcdLease(client, leaseId, TimeSpan.FromSeconds(answer.GrantedTTL), keepAliveEvery, sent, options, logger, _disposed.Token,
            remaining: TimeSpan.FromSeconds(answer.TTL));
        lease.Start();
        return lease;
    }

    public async Task<bool> TryClaimAsync(ILease lease, string key, string value, CancellationToken cancellationToken)
    {
        var request = new TxnRequest();
        request.Compare.Add(new Compare
        {
            Key = ByteString.CopyFromUtf8(key),
            Target = Compare.Types.CompareTarget.Create,
            Result = Compare.Types.CompareResult.Equal,
            CreateRevision = 0,
        });
        request.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value), Lease = lease.Id } });
        var response = await client.TransactionAsync(request, deadline: Deadline, cancellationToken: cancellationToken);
        return response.Succeeded;
    }

    public async Task PutAsync(ILease lease, string key, string value, CancellationToken cancellationToken) =>
        await client.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value), Lease = lease.Id },
            deadline: Deadline, cancellationToken: cancellationToken);

    public async Task<long> PutDurableAsync(string key, string value, CancellationToken cancellationToken)
    {
        var response = await client.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Header.Revision;
    }

    public async IAsyncEnumerable<KeyChange> WatchPrefixAsync(string prefix, long afterRevision,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = client.GetConnection().WatchClient.Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest
            {
                Key = ByteString.CopyFromUtf8(prefix),
                RangeEnd = ByteString.CopyFromUtf8(EtcdPoolDatabase.PrefixEnd(prefix)),
                StartRevision = afterRevision + 1,
            },
        }, cancellationToken);
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var response = call.ResponseStream.Current;
            if (response.CompactRevision > 0 || response.Canceled)
            {
                throw new InvalidOperationException($"watch on {prefix} ended: compacted at {response.CompactRevision} {response.CancelReason}");
            }

            foreach (var ev in response.Events)
            {
                var deleted = ev.Type == Mvccpb.Event.Types.EventType.Delete;
                yield return new KeyChange(ev.Kv.ModRevision, ev.Kv.Key.ToStringUtf8(), deleted ? null : ev.Kv.Value.ToStringUtf8());
            }
        }
    }

    public async Task<string?> GetValueAsync(string key, CancellationToken cancellationToken)
    {
        var response = await client.GetAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, deadline: Deadline,
            cancellationToken: cancellationToken);
        return response.Kvs.Count == 0 ? null : response.Kvs[0].Value.ToStringUtf8();
    }

    public async Task<(string? Value, long Revision)> GetWithRevisionAsync(string key, CancellationToken cancellationToken)
    {
        var response = await client.GetAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, deadline: Deadline,
            cancellationToken: cancellationToken);
        return response.Kvs.Count == 0 ? (null, 0) : (response.Kvs[0].Value.ToStringUtf8(), response.Kvs[0].ModRevision);
    }

    public async Task<IReadOnlyDictionary<string, string>> GetPrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var response = await client.GetAsync(new RangeRequest
        {
            Key = ByteString.CopyFromUtf8(prefix),
            RangeEnd = ByteString.CopyFromUtf8(EtcdPoolDatabase.PrefixEnd(prefix)),
        }, deadline: Deadline, cancellationToken: cancellationToken);
        return response.Kvs.ToDictionary(kv => kv.Key.ToStringUtf8(), kv => kv.Value.ToStringUtf8(), StringComparer.Ordinal);
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var response = await client.DeleteAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) }, deadline: Deadline,
            cancellationToken: cancellationToken);
        return response.Deleted > 0;
    }

    public async Task<bool> DeleteIfValueAsync(string key, string expectedValue, CancellationToken cancellationToken)
    {
        var request = new TxnRequest();
        request.Compare.Add(new Compare
        {
            Key = ByteString.CopyFromUtf8(key),
            Target = Compare.Types.CompareTarget.Value,
            Result = Compare.Types.CompareResult.Equal,
            Value = ByteString.CopyFrom(Encoding.UTF8.GetBytes(expectedValue)),
        });
        request.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) } });
        var response = await client.TransactionAsync(request, deadline: Deadline, cancellationToken: cancellationToken);
        return response.Succeeded;
    }

    public async Task<bool> RevokeHolderAsync(string key, string expectedValue, CancellationToken cancellationToken)
    {
        var response = await client.GetAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, deadline: Deadline,
            cancellationToken: cancellationToken);
        if (response.Kvs.Count == 0 || response.Kvs[0].Value.ToStringUtf8() != expectedValue || response.Kvs[0].Lease == 0)
        {
            return false;
        }

        try
        {
            await client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = response.Kvs[0].Lease }, deadline: Deadline, cancellationToken: cancellationToken);
            return true;
        }
        catch (Grpc.Core.RpcException ex) when (ex.StatusCode == Grpc.Core.StatusCode.NotFound)
        {
            // The lease expired (or was revoked) between the read and the revoke: its keys are gone all the same.
            return false;
        }
    }

    private int _disposedFlag;

    public void Dispose()
    {
        // DI may dispose the database twice (as itself and as IPoolDatabase).
        if (Interlocked.Exchange(ref _disposedFlag, 1) == 0)
        {
            _disposed.Cancel();
            _disposed.Dispose();
        }
    }
}

/// <summary>
/// One lease, renewed over a keepalive stream. <see cref="SafeUntil"/> (monotonic) counts from the send time of the last
/// acknowledged keepalive, not its arrival: etcd may have started the TTL at any moment after we sent.
/// </summary>
internal sealed class EtcdLease : ILease
{
    private readonly EtcdClient _client;
    private readonly EtcdOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop;
    private readonly CancellationTokenSource _lost = new();
    private readonly TimeSpan _keepAliveEvery;
    private long _safeUntilTicks;
    private Task _loop = Task.CompletedTask;

    public EtcdLease(EtcdClient client, long id, TimeSpan ttl, TimeSpan keepAliveEvery, TimeSpan grantSent, EtcdOptions options, ILogger logger, CancellationToken storeDisposed,
        TimeSpan? remaining = null)
    {
        _client = client;
        Id = id;
        Ttl = ttl;
        _keepAliveEvery = keepAliveEvery;
        _options = options;
        _logger = logger;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(storeDisposed);
        _safeUntilTicks = LeaseTiming.SafeUntil(grantSent, remaining ?? ttl, options.LeaseSafetyMargin).Ticks;
    }

    public long Id { get; }

    public TimeSpan Ttl { get; }

    public TimeSpan SafeUntil => TimeSpan.FromTicks(Interlocked.Read(ref _safeUntilTicks));

    public CancellationToken Lost => _lost.Token;

    public void Start() => _loop = Task.Run(() => KeepAliveLoopAsync(_stop.Token));

    private TimeSpan AckTimeout => LeaseTiming.AckTimeout(Ttl, _options.RequestTimeout);

    private async Task KeepAliveLoopAsync(CancellationToken stop)
    {
        var interval = _keepAliveEvery;
        while (!stop.IsCancellationRequested && !_lost.IsCancellationRequested)
        {
            try
            {
                using var call = _client.GetConnection().LeaseClient.LeaseKeepAlive(cancellationToken: stop);
                while (!stop.IsCancellationRequested)
                {
                    var sent = MonotonicTime.Now;
                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = Id }, stop);
                    using var ackTimeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                    ackTimeout.CancelAfter(AckTimeout);
                    if (!await call.ResponseStream.MoveNext(ackTimeout.Token))
                    {
                        break;
                    }

                    var ttl = call.ResponseStream.Current.TTL;
                    if (ttl <= 0)
                    {
                        _logger.LogWarning("Lease {LeaseId} has expired in etcd", Id);
                        _lost.Cancel();
                        return;
                    }

                    Interlocked.Exchange(ref _safeUntilTicks, LeaseTiming.SafeUntil(sent, TimeSpan.FromSeconds(ttl), _options.LeaseSafetyMargin).Ticks);
                    CheckDeadline();
                    await Task.Delay(interval, stop);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogDebug(ex, "Keepalive stream for lease {LeaseId} failed; reconnecting", Id);
            }

            CheckDeadline();
            try
            {
                await Task.Delay(LeaseTiming.ReconnectDelay, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void CheckDeadline()
    {
        if (MonotonicTime.Now - SafeUntil is var late && late >= TimeSpan.Zero && !_lost.IsCancellationRequested)
        {
            _logger.LogWarning("Lease {LeaseId} could not be renewed before its safe time ({Late:0.0} s ago); treating it as lost", Id, late.TotalSeconds);
            _lost.Cancel();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = Id }, cancellationToken: timeout.Token);
        }
        catch (Exception ex)
        {
            // The lease expires by itself; revoking only makes it quicker.
            _logger.LogDebug(ex, "Could not revoke lease {LeaseId}", Id);
        }

        _stop.Dispose();
        _lost.Dispose();
    }
}
