using Corral.Agent.Membership;
using Corral.Model;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// A host's care of its etcd member's space, against a real etcd given a 16 MiB quota: filled past it, etcd raises
/// NOSPACE and the pool takes no write; once the data is deleted (etcd still takes deletes), one pass compacts,
/// defragments and disarms, the pool writes again and a POOL_DATABASE_FULL message tells the episode. Data near the
/// quota (here 60% of it; each 1 MiB value takes about 1.4 MiB of etcd's file) raises POOL_DATABASE_NEARLY_FULL about the host, which goes once the data has.
/// </summary>
public sealed class PoolDatabaseCareTests : IAsyncLifetime
{
    private const long Quota = 16L << 20;
    private const string HostUuid = "7d1ad3c2-5b3e-4f55-9c52-0c1a2b3c4d5e";
    private static readonly ByteString Megabyte = ByteString.CopyFrom(new byte[1 << 20]);
    private readonly ListLogger _log = new();
    private EtcdFixture _etcd = null!;
    private EtcdClient _raw = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync("--quota-backend-bytes", Quota.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _raw = new EtcdClient(_etcd.Endpoint);
    }

    public async Task DisposeAsync()
    {
        _raw.Dispose();
        await _etcd.DisposeAsync();
    }

    private PoolDatabaseCare Care(Corral.PoolDatabase.IPoolDatabase database) =>
        new(_etcd.Endpoint, Quota, HostUuid, database, new PoolDatabaseCareOptions { DefragmentMinimumBytes = 1L << 20, WarnAtShare = 0.6, ClearAtShare = 0.3 }, TimeProvider.System,
            _log);

    [Fact]
    public async Task A_full_pool_database_is_recovered_and_the_episode_told_once_its_data_is_gone()
    {
        using var database = _etcd.CreateDatabase();
        var keys = await FillUntilRefusedAsync();
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => database.CommitAsync(NewMessage("BEFORE"), CancellationToken.None));
        Assert.Contains("space exceeded", refused.ToString(), StringComparison.OrdinalIgnoreCase);

        // Deletes are what etcd still takes; what they free becomes free pages only once compacted.
        foreach (var key in keys)
        {
            await _raw.DeleteAsync(key);
        }

        await Care(database).RunOnceAsync(CancellationToken.None);

        Assert.Empty((await _raw.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get })).Alarms);
        await database.CommitAsync(NewMessage("AFTER"), CancellationToken.None);
        var messages = await database.GetAllAsync(XenApi.Message.ClassName, CancellationToken.None);
        var full = Assert.Single(messages, m => m.Get(XenApi.Message.Name) == PoolDatabaseCare.Full);
        Assert.Equal(HostUuid, full.Get(XenApi.Message.ObjUuid));
        Assert.Contains("took no write", full.Get(XenApi.Message.Body), StringComparison.Ordinal);
        var status = await _raw.StatusAsync(new StatusRequest());
        Assert.True(status.DbSize < Quota / 2, $"the file is still {status.DbSize} bytes after the recovery");
    }

    [Fact]
    public async Task Data_near_the_quota_raises_a_message_about_the_host_that_goes_with_the_data()
    {
        using var database = _etcd.CreateDatabase();
        var care = Care(database);
        var keys = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            keys.Add($"junk/{i}");
            await _raw.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(keys[^1]), Value = Megabyte });
        }

        await InUseAsync(inUse => inUse >= 0.6 * Quota);
        await care.RunOnceAsync(CancellationToken.None);
        var all = await database.GetAllAsync(XenApi.Message.ClassName, CancellationToken.None);
        Assert.True(all.Count == 1, string.Join("\n", _log.Lines));
        var raised = all[0];
        Assert.Equal((PoolDatabaseCare.NearlyFull, HostUuid), (raised.Get(XenApi.Message.Name), raised.Get(XenApi.Message.ObjUuid)));

        foreach (var key in keys)
        {
            await _raw.DeleteAsync(key);
        }

        // What etcd's periodic compaction does in a pool (Corral:Etcd:Member:HistoryRetention), here at once.
        var revision = (await _raw.StatusAsync(new StatusRequest())).Header.Revision;
        await _raw.CompactAsync(new CompactionRequest { Revision = revision, Physical = true });
        await InUseAsync(inUse => inUse < 0.3 * Quota);
        await care.RunOnceAsync(CancellationToken.None);
        Assert.Empty(await database.GetAllAsync(XenApi.Message.ClassName, CancellationToken.None));
    }

    /// <summary>
    /// Waits until etcd reports data in use as <paramref name="condition"/> wants: its backend commits in batches (every
    /// 100 ms) and counts the pages a compaction freed at its next commit, so the sizes follow a moment later, and only
    /// while something writes (in a pool, heartbeats always do; here a small key does).
    /// </summary>
    private async Task InUseAsync(Func<long, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition((await _raw.StatusAsync(new StatusRequest())).DbSizeInUse))
        {
            Assert.True(DateTime.UtcNow < deadline, "etcd's size in use never came to what the test wrote");
            await _raw.PutAsync("heartbeat", DateTime.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            await Task.Delay(150);
        }
    }

    private async Task<List<string>> FillUntilRefusedAsync()
    {
        var keys = new List<string>();
        for (var i = 0; i < 64; i++)
        {
            try
            {
                await _raw.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"junk/{i}"), Value = Megabyte });
                keys.Add($"junk/{i}");
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("space exceeded", StringComparison.Ordinal))
            {
                return keys;
            }
        }

        throw new InvalidOperationException("etcd took 64 MiB under a 16 MiB quota");
    }

    private static Corral.PoolDatabase.PoolTransaction NewMessage(string name)
    {
        var tx = new Corral.PoolDatabase.PoolTransaction();
        Corral.Api.Messages.PoolMessages.Create(tx, name, 5L, Cls.Pool, HostUuid, "", DateTime.UtcNow);
        return tx;
    }
}

/// <summary>What the care logged, for a failure's message.</summary>
internal sealed class ListLogger : ILogger
{
    public List<string> Lines { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Add($"{logLevel} {eventId.Id} {formatter(state, exception)} {exception?.Message}");
}
