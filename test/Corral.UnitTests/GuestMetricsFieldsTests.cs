using Corral.Agent.Vms;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu.GuestAgent;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// A guest agent's report as VM_guest_metrics carries it: xapi's fields with xapi's keys, <c>disks</c> empty as xapi
/// leaves it, and the guest's file systems and logged-in users in <c>other</c> under <c>data-</c> keys.
/// </summary>
public sealed class GuestMetricsFieldsTests
{
    private static readonly DateTime Now = new(2026, 12, 6, 0, 30, 0, DateTimeKind.Utc);

    private static GuestAgentReport Report(IReadOnlyList<GuestVolume>? volumes = null, IReadOnlyList<GuestUser>? users = null, TimeSpan? uptime = null) =>
        new("7.2.22", uptime ?? TimeSpan.FromSeconds(125), new Dictionary<string, string> { ["name"] = "Debian GNU/Linux 12 (bookworm)" },
            new Dictionary<string, string> { ["0/ip"] = "10.0.0.5" }, new Dictionary<string, string> { ["virtio_blk"] = "1" }, Now,
            CanFreeze: true, volumes, users);

    private static readonly GuestVolume Root = new("/", "ext4", "vda1", 10_000_000_000, 4_000_000_000);
    private static readonly GuestVolume Data = new("/data", "xfs", "vdb", 2_000_000_000, null);
    private static readonly GuestUser Alice = new("alice", Now.AddMinutes(-5));
    private static readonly GuestUser Root0 = new("root", Now.AddHours(-2));

    private static XenObject Metrics(GuestAgentReport report)
    {
        var metrics = new XenObject(XenClasses.VMGuestMetricsSchema, "OpaqueRef:gm", new Dictionary<string, object?>());
        GuestMetricsFields.Apply(metrics, report);
        return metrics;
    }

    [Fact]
    public void File_systems_and_users_go_to_other_under_data_keys_and_disks_stays_empty_as_xapi_leaves_it()
    {
        var metrics = Metrics(Report([Data, Root], [Alice, Root0]));
        Assert.Empty(metrics.Get(XenApi.VMGuestMetrics.Disks));
        var other = metrics.Get(XenApi.VMGuestMetrics.Other);

        // xapi's own keys are still there.
        Assert.Equal("1", other["feature-shutdown"]);
        Assert.Equal("1", other["feature-quiesce"]);
        Assert.Equal("125", other["uptime"]);

        // File systems numbered by mount point; free space only where the agent said how much is used.
        Assert.Equal("2", other["data-volumes"]);
        Assert.Equal("/", other["data-volume-0-mount-point"]);
        Assert.Equal("ext4", other["data-volume-0-filesystem"]);
        Assert.Equal("vda1", other["data-volume-0-device"]);
        Assert.Equal("10000000000", other["data-volume-0-size"]);
        Assert.Equal("4000000000", other["data-volume-0-free"]);
        Assert.Equal("/data", other["data-volume-1-mount-point"]);
        Assert.Equal("2000000000", other["data-volume-1-size"]);
        Assert.False(other.ContainsKey("data-volume-1-free"));

        // Users in the order they logged in, with xapi's date format.
        Assert.Equal("2", other["data-users"]);
        Assert.Equal("root", other["data-user-0"]);
        Assert.Equal("20261205T22:30:00Z", other["data-user-0-login-time"]);
        Assert.Equal("alice", other["data-user-1"]);
        Assert.Equal("20261206T00:25:00Z", other["data-user-1-login-time"]);
    }

    [Fact]
    public void An_agent_that_does_not_report_them_adds_no_keys_and_one_with_none_says_zero()
    {
        var silent = Metrics(Report()).Get(XenApi.VMGuestMetrics.Other);
        Assert.DoesNotContain(silent.Keys, k => k.StartsWith("data-", StringComparison.Ordinal));

        var none = Metrics(Report([], [])).Get(XenApi.VMGuestMetrics.Other);
        Assert.Equal("0", none["data-volumes"]);
        Assert.Equal("0", none["data-users"]);
        Assert.DoesNotContain(none.Keys, k => k.StartsWith("data-user-", StringComparison.Ordinal) || k.StartsWith("data-volume-", StringComparison.Ordinal));
    }

    [Fact]
    public void Long_lists_are_cut_but_counted_in_full()
    {
        var volumes = Enumerable.Range(0, 70).Select(i => new GuestVolume($"/mnt/{i:D3}", "ext4", $"vd{i}", 1, 1)).ToList();
        var users = Enumerable.Range(0, 70).Select(i => new GuestUser($"user{i:D3}", Now.AddSeconds(i))).ToList();
        var other = Metrics(Report(volumes, users)).Get(XenApi.VMGuestMetrics.Other);
        Assert.Equal("70", other["data-volumes"]);
        Assert.Equal("70", other["data-users"]);
        Assert.Equal("/mnt/063", other["data-volume-63-mount-point"]);
        Assert.False(other.ContainsKey("data-volume-64-mount-point"));
        Assert.Equal("user063", other["data-user-63"]);
        Assert.False(other.ContainsKey("data-user-64"));
    }

    [Fact]
    public void Free_space_and_uptime_alone_do_not_cause_a_write_within_the_minute_but_a_new_mount_or_user_does()
    {
        var before = GuestMetricsFields.Fingerprint(Report([Root], [Alice], TimeSpan.FromSeconds(125)));
        Assert.Equal(before, GuestMetricsFields.Fingerprint(Report([Root with { FreeBytes = 3_000_000_000 }], [Alice], TimeSpan.FromSeconds(170))));
        Assert.NotEqual(before, GuestMetricsFields.Fingerprint(Report([Root], [Alice], TimeSpan.FromSeconds(185))));
        Assert.NotEqual(before, GuestMetricsFields.Fingerprint(Report([Root, Data], [Alice], TimeSpan.FromSeconds(125))));
        Assert.NotEqual(before, GuestMetricsFields.Fingerprint(Report([Root], [Alice, Root0], TimeSpan.FromSeconds(125))));
        Assert.NotEqual(before, GuestMetricsFields.Fingerprint(Report([Root with { SizeBytes = 20_000_000_000 }], [Alice], TimeSpan.FromSeconds(125))));
        Assert.NotEqual(before, GuestMetricsFields.Fingerprint(Report([Root], [], TimeSpan.FromSeconds(125))));
    }

    [Fact]
    public void The_agents_answers_become_the_reports_volumes_and_users()
    {
        var volumes = QgaQueries.Volumes(
        [
            new QgaFileSystem("vda2", "/data", "ext4", 300, 1000, "virtio", "/dev/vda"),
            new QgaFileSystem("\\\\?\\Volume{1}\\", "C:\\", "NTFS", null, null, "scsi", null),
            new QgaFileSystem("sr0", "", "iso9660", 0, 0, "ide", null),
        ]);
        Assert.Equal([new GuestVolume("/data", "ext4", "vda2", 1000, 700), new GuestVolume("C:\\", "NTFS", "\\\\?\\Volume{1}\\", null, null)], volumes);

        var users = QgaQueries.Users([new QgaUser("root", null, Now), new QgaUser("alice", "CORP", Now), new QgaUser("", null, Now)]);
        Assert.Equal([new GuestUser("root", Now), new GuestUser("CORP\\alice", Now)], users);
    }
}
