using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>The agent's own etcd member (LocalEtcdMember), started for real: what it is started with.</summary>
public sealed class EtcdMemberTests
{
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task A_member_compacts_its_history_and_has_a_space_quota()
    {
        var directory = Directory.CreateTempSubdirectory("corral-member-");
        EtcdMemberOptions options = null!;
        LocalEtcdMember member = null!;
        EtcdTlsFiles tls = null!;
        try
        {
            // A port picked free can be taken by a test running alongside before etcd binds it: then new ports.
            for (var attempt = 1; ; attempt++)
            {
                options = new EtcdMemberOptions
                {
                    Enabled = true,
                    Name = "member-test",
                    DataDirectory = Path.Combine(directory.FullName, $"etcd{attempt}"),
                    PeerUrl = $"https://127.0.0.1:{FreePort()}",
                    ClientUrl = $"https://127.0.0.1:{FreePort()}",
                    HistoryRetention = TimeSpan.FromMinutes(7),
                    QuotaBytes = 96L * 1024 * 1024,
                };
                Assert.Empty(options.Problems());
                tls = new EtcdTlsFiles(Path.Combine(directory.FullName, $"tls{attempt}"));
                tls.CreatePool(options.Name, ["127.0.0.1"], TimeProvider.System);
                member = new LocalEtcdMember(options, NullLogger.Instance, tls);
                await member.StartAsync(EtcdStartMode.NewCluster, "", CancellationToken.None);
                try
                {
                    await member.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
                    break;
                }
                catch (InvalidOperationException) when (attempt < 3 && member.LastLogLines(20).Contains("address already in use", StringComparison.Ordinal))
                {
                }
            }

            // etcd reports its quota itself; the compaction settings are on the command line it runs with.
            using var http = new HttpClient(tls.CreateHttpHandler());
            var metrics = await http.GetStringAsync(new Uri(new Uri(options.ClientUrl), "/metrics"));
            Assert.Contains("etcd_server_quota_backend_bytes " + (96.0 * 1024 * 1024).ToString("0.########e+00", CultureInfo.InvariantCulture), metrics,
                StringComparison.Ordinal);
            var pid = member.RunningPid() ?? throw new InvalidOperationException("the member is not running");
            var arguments = (await File.ReadAllTextAsync($"/proc/{pid}/cmdline")).Split('\0');
            var mode = Array.IndexOf(arguments, "--auto-compaction-mode");
            var retention = Array.IndexOf(arguments, "--auto-compaction-retention");
            Assert.True(mode > 0 && retention > 0, string.Join(' ', arguments));
            Assert.Equal("periodic", arguments[mode + 1]);
            Assert.Equal("7m", arguments[retention + 1]);
        }
        finally
        {
            if (member is not null)
            {
                await member.StopAsync(CancellationToken.None);
            }

            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Settings_that_would_lose_clients_events_or_stop_writes_are_refused()
    {
        Assert.Contains(new EtcdMemberOptions { HistoryRetention = TimeSpan.FromMinutes(2) }.Problems(),
            p => p.StartsWith("Corral:Etcd:Member:HistoryRetention", StringComparison.Ordinal));
        Assert.Contains(new EtcdMemberOptions { HistoryRetention = TimeSpan.FromSeconds(330) }.Problems(),
            p => p.StartsWith("Corral:Etcd:Member:HistoryRetention", StringComparison.Ordinal));
        Assert.Contains(new EtcdMemberOptions { QuotaBytes = 1024 }.Problems(), p => p.StartsWith("Corral:Etcd:Member:QuotaBytes", StringComparison.Ordinal));
        Assert.Empty(new EtcdMemberOptions().Problems());
    }

    [Fact]
    public void Raft_timings_etcd_itself_would_refuse_are_refused_at_start()
    {
        Assert.Contains(new EtcdMemberOptions { ElectionTimeout = TimeSpan.FromMilliseconds(200) }.Problems(),
            p => p.Contains("ElectionTimeout (200 ms) at least five heartbeats", StringComparison.Ordinal));
        Assert.Contains(new EtcdMemberOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(5) }.Problems(),
            p => p.StartsWith("Corral:Etcd:Member:HeartbeatInterval (5 ms)", StringComparison.Ordinal));
        Assert.Contains(new EtcdMemberOptions { ElectionTimeout = TimeSpan.FromMinutes(1) }.Problems(),
            p => p.Contains("at most 50 s", StringComparison.Ordinal));
        Assert.Empty(new EtcdMemberOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100), ElectionTimeout = TimeSpan.FromSeconds(1) }.Problems());
    }
}
