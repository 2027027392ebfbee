using System.Globalization;
using System.Text.Json;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The invariant under every host's view of the pool: the etcd members hold the same data. Checked as etcd's own
/// corruption check does it, with Debian's etcdctl: each member's hash of its keys and their history up to a revision
/// they all have (<c>endpoint hashkv --rev</c>), compared where their compactions agree.
/// </summary>
internal static class PoolDatabaseConsistency
{
    public static async Task AssertSameDataAsync(LabSession lab, int hosts = 3)
    {
        string last = "";
        for (var attempt = 1; attempt <= 10; attempt++)
        {
            var revisions = new List<long>();
            for (var host = 1; host <= hosts; host++)
            {
                revisions.Add(Header(await JsonAsync(lab, host, "endpoint", "status", "-w", "json"), "Status").GetProperty("revision").GetInt64());
            }

            var at = revisions.Min().ToString(CultureInfo.InvariantCulture);
            var hashes = new List<(int Host, long Compacted, uint Hash)>();
            for (var host = 1; host <= hosts; host++)
            {
                var kv = (await JsonAsync(lab, host, "endpoint", "hashkv", $"--rev={at}", "-w", "json"))[0].GetProperty("HashKV");
                hashes.Add((host, kv.GetProperty("compact_revision").GetInt64(), kv.GetProperty("hash").GetUInt32()));
            }

            last = $"at revision {at} (members at {string.Join(", ", revisions)}): "
                + string.Join("; ", hashes.Select(h => $"lab-host{h.Host} hash {h.Hash} compacted at {h.Compacted}"));
            if (hashes.Select(h => h.Compacted).Distinct().Count() == 1)
            {
                Assert.True(hashes.Select(h => h.Hash).Distinct().Count() == 1, "the pool database's etcd members hold different data " + last);
                return;
            }

            // A compaction applied on some members and not yet on others: look again.
            await Task.Delay(500);
        }

        Assert.Fail("the etcd members' compactions never agreed long enough to compare their data " + last);
    }

    private static async Task<JsonElement> JsonAsync(LabSession lab, int host, params string[] args)
    {
        var (code, output) = await lab.Etcdctl(host, args);
        Assert.True(code == 0, $"etcdctl {string.Join(' ', args)} on lab-host{host}: {output}");
        return JsonDocument.Parse(output).RootElement;
    }

    private static JsonElement Header(JsonElement list, string field) => list[0].GetProperty(field).GetProperty("header");
}
