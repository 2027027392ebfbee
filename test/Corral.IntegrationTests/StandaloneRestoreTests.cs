using System.Diagnostics;
using System.Text.Json;
using Corral.PoolDatabase.Etcd.Membership;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// What pool.emergency_transition_to_master does to the surviving host's etcd member (StandaloneRestore), on Debian's
/// etcd and etcdctl: the member killed as it is when it cannot stop in time, its database restored into a cluster of
/// its own, and started on it.
/// </summary>
public sealed class StandaloneRestoreTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_member_without_quorum_comes_back_alone_with_every_key_and_revision_under_a_new_cluster_id(bool snapshotFirst)
    {
        var root = Directory.CreateTempSubdirectory("corral-restore-");
        TlsMember? host = null;
        try
        {
            host = await TlsMember.StartNewPoolAsync(root.FullName, "restore-test");
            var tls = TlsMember.With(host.Tls);
            for (var i = 0; i < 50; i++)
            {
                Assert.Equal(0, (await host.EtcdctlAsync([.. tls, "put", $"/corral/key{i % 7}", $"value{i}"])).Code);
            }

            var before = await StatusAsync(host, tls);
            if (snapshotFirst)
            {
                // What the transition does while the member still runs: everything it applied, the last write included.
                await StandaloneRestore.SaveSnapshotAsync(host.Options, host.Tls, NullLogger.Instance, CancellationToken.None);
            }
            else
            {
                // A member found dead: its file, which etcd commits every 100 ms. A survivor whose quorum was lost has
                // applied nothing for longer than that by the time it is recovered.
                await Task.Delay(TimeSpan.FromSeconds(1));
            }

            // Killed outright, as StopAsync does when the member does not stop within 10 s (a member without quorum).
            Process.GetProcessById(host.Member.RunningPid() ?? throw new InvalidOperationException("not running")).Kill();
            await WaitGoneAsync(host.Member);

            await StandaloneRestore.StageAsync(host.Options, NullLogger.Instance, CancellationToken.None);
            // Staged twice (a transition resumed after a crash): made afresh, not refused.
            await StandaloneRestore.StageAsync(host.Options, NullLogger.Instance, CancellationToken.None);
            StandaloneRestore.Install(host.Member);
            StandaloneRestore.Install(host.Member);
            Assert.True(Directory.Exists(host.Options.DataDirectory.TrimEnd('/') + ".previous"), "the old data is kept aside");
            Assert.False(Directory.Exists(host.Options.DataDirectory.TrimEnd('/') + ".restore"));
            Assert.False(File.Exists(host.Options.DataDirectory.TrimEnd('/') + ".snapshot.db"));
            await host.Member.StartAsync(EtcdStartMode.Resume, "", CancellationToken.None);
            await host.Member.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);

            var after = await StatusAsync(host, tls);
            Assert.NotEqual(before.ClusterId, after.ClusterId);
            Assert.Equal(before.Revision, after.Revision);
            for (var k = 0; k < 7; k++)
            {
                var last = Enumerable.Range(0, 50).Last(i => i % 7 == k);
                Assert.Equal($"/corral/key{k}\nvalue{last}", (await host.EtcdctlAsync([.. tls, "get", $"/corral/key{k}"])).Output);
            }

            var members = await host.EtcdctlAsync([.. tls, "member", "list"]);
            Assert.Single(members.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($", started, {host.Options.Name}, {host.Options.PeerUrl}, {host.Options.ClientUrl}, false", members.Output, StringComparison.Ordinal);
            // It takes writes, and its revisions go on from where the old cluster's were.
            Assert.Equal(0, (await host.EtcdctlAsync([.. tls, "put", "/corral/after", "yes"])).Code);
            Assert.Equal(after.Revision + 1, (await StatusAsync(host, tls)).Revision);
        }
        finally
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }

            root.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_member_without_a_database_is_refused_with_where_it_looked()
    {
        var root = Directory.CreateTempSubdirectory("corral-restore-");
        try
        {
            var host = TlsMember.Prepare(root.FullName, "empty");
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => StandaloneRestore.StageAsync(host.Options, NullLogger.Instance, CancellationToken.None));
            Assert.Contains(Path.Combine(host.Options.DataDirectory, "member", "snap", "db"), error.Message, StringComparison.Ordinal);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    private static async Task<(ulong ClusterId, long Revision)> StatusAsync(TlsMember host, string[] tls)
    {
        var (code, output) = await host.EtcdctlAsync([.. tls, "endpoint", "status", "-w", "json"]);
        Assert.True(code == 0, output);
        var header = JsonDocument.Parse(output).RootElement[0].GetProperty("Status").GetProperty("header");
        return (header.GetProperty("cluster_id").GetUInt64(), header.GetProperty("revision").GetInt64());
    }

    private static async Task WaitGoneAsync(LocalEtcdMember member)
    {
        for (var i = 0; i < 100 && member.RunningPid() is not null; i++)
        {
            await Task.Delay(50);
        }

        Assert.Null(member.RunningPid());
    }
}
