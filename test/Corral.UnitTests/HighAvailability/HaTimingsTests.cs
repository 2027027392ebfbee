using Corral.Agent.HighAvailability;
using Corral.HighAvailability;
using Xunit;

namespace Corral.UnitTests.HighAvailability;

/// <summary>HA's timing budget: the defaults are safe; a budget that breaks an inequality of the safety argument is refused, by name.</summary>
public sealed class HaTimingsTests
{
    [Fact]
    public void The_defaults_keep_every_inequality()
    {
        Assert.Empty(new HaTimings().Problems());
        Assert.True(new HaOptionsValidation().Validate(null, new HaOptions()).Succeeded);
    }

    [Fact]
    public void A_relative_statefile_mount_directory_is_refused()
    {
        var result = new HaOptionsValidation().Validate(null, new HaOptions { StatefileMountDirectory = "run/ha" });
        Assert.True(result.Failed);
        Assert.Contains("Corral:Ha: StatefileMountDirectory must be an absolute path, not \"run/ha\"", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void A_master_that_would_count_a_heartbeat_stopped_before_the_host_killed_its_vms_is_refused()
    {
        var result = new HaOptionsValidation().Validate(null, new HaOptions { HeartbeatStaleAfter = TimeSpan.FromSeconds(5) });
        Assert.True(result.Failed);
        Assert.Contains("Corral:Ha: HeartbeatStaleAfter (5 s) must exceed OwnHeartbeatWindow + SelfFenceCheck + ReportGrace + the longer of KillGrace and WatchdogTimeout (6.6 s)",
            result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void A_watchdog_that_would_reset_a_host_after_the_master_restarted_its_vms_or_that_is_petted_too_rarely_is_refused()
    {
        var late = new HaTimings { WatchdogTimeout = TimeSpan.FromSeconds(5) }.Problems();
        Assert.Contains(late, p => p.StartsWith("HeartbeatStaleAfter (7 s) must exceed OwnHeartbeatWindow + SelfFenceCheck + ReportGrace + the longer of KillGrace and WatchdogTimeout (7.6 s)", StringComparison.Ordinal));
        var daemonGone = new HaTimings { HeartbeatInterval = TimeSpan.FromSeconds(3), OwnHeartbeatWindow = TimeSpan.FromSeconds(6), HeartbeatStaleAfter = TimeSpan.FromSeconds(5.9) }.Problems();
        Assert.Contains(daemonGone, p => p.StartsWith("HeartbeatStaleAfter (5.9 s) must exceed HeartbeatInterval + WatchdogTimeout (7 s)", StringComparison.Ordinal));
        var fractional = new HaTimings { WatchdogTimeout = TimeSpan.FromSeconds(1.5) }.Problems();
        Assert.Contains(fractional, p => p.StartsWith("WatchdogTimeout (1.5 s) must be whole seconds", StringComparison.Ordinal));
    }

    [Fact]
    public void A_lease_ttl_etcd_cannot_grant_or_a_margin_that_would_outlast_one_lost_keepalive_is_refused()
    {
        Assert.Contains(new HaTimings { LeaseTtl = TimeSpan.FromSeconds(2.5) }.Problems(),
            p => p.StartsWith("LeaseTtl (2.5 s) must be whole seconds", StringComparison.Ordinal));
        Assert.Contains(new HaTimings { LeaseTtl = TimeSpan.FromSeconds(1), LeaseSafetyMargin = TimeSpan.FromMilliseconds(100) }.Problems(),
            p => p.StartsWith("LeaseTtl (1 s)", StringComparison.Ordinal));
        Assert.Contains(new HaTimings { LeaseTtl = TimeSpan.FromSeconds(4), LeaseSafetyMargin = TimeSpan.FromSeconds(2) }.Problems(),
            p => p.StartsWith("LeaseSafetyMargin (2 s) must be positive and under half of LeaseTtl (2 s)", StringComparison.Ordinal));
        Assert.Contains(new HaTimings { LeaseSafetyMargin = TimeSpan.Zero }.Problems(), p => p.StartsWith("LeaseSafetyMargin (0 s)", StringComparison.Ordinal));

        var refused = new HaOptionsValidation().Validate(null, new HaOptions { LeaseTtl = TimeSpan.FromSeconds(3), LeaseSafetyMargin = TimeSpan.FromSeconds(1.5) });
        Assert.True(refused.Failed);
        Assert.Contains("Corral:Ha: LeaseSafetyMargin (1.5 s)", refused.FailureMessage, StringComparison.Ordinal);
        Assert.Empty(new HaTimings { LeaseTtl = TimeSpan.FromSeconds(5), LeaseSafetyMargin = TimeSpan.FromSeconds(1) }.Problems());
        Assert.Contains(new HaTimings { KeepAliveInterval = TimeSpan.FromSeconds(1.5) }.Problems(),
            p => p.StartsWith("KeepAliveInterval (1.5 s) must be at least 0.05 s and at most a quarter of LeaseTtl (1 s)", StringComparison.Ordinal));
    }

    [Fact]
    public void A_budget_that_would_fence_a_stall_HA_rides_out_is_refused_and_a_shorter_stall_buys_a_shorter_budget()
    {
        var watchdog = new HaTimings { WatchdogTimeout = TimeSpan.FromSeconds(3) }.Problems();
        Assert.Contains(watchdog, p => p.StartsWith("WatchdogTimeout (3 s) must exceed StallToRideOut + SelfFenceCheck (3.1 s)", StringComparison.Ordinal));
        var lease = new HaTimings { LeaseTtl = TimeSpan.FromSeconds(3) }.Problems();
        Assert.Contains(lease, p => p.StartsWith("LeaseTtl - KeepAliveInterval - LeaseSafetyMargin (2.25 s) must be at least StallToRideOut (3 s)", StringComparison.Ordinal));

        var shorter = new HaTimings { StallToRideOut = TimeSpan.FromSeconds(2), WatchdogTimeout = TimeSpan.FromSeconds(3), LeaseTtl = TimeSpan.FromSeconds(3) };
        Assert.Empty(shorter.Problems());
        Assert.Equal(TimeSpan.FromSeconds(2.5), shorter.MasterUnreachableFor);
        Assert.Equal(TimeSpan.FromSeconds(2.75), shorter.MasterHeartbeatStillFor);
    }

    [Fact]
    public void A_window_that_one_late_write_would_close_is_refused()
    {
        var problems = new HaTimings { HeartbeatInterval = TimeSpan.FromSeconds(2), OwnHeartbeatWindow = TimeSpan.FromSeconds(3), HeartbeatStaleAfter = TimeSpan.FromSeconds(10) }.Problems();
        Assert.Contains(problems, p => p.StartsWith("OwnHeartbeatWindow (3 s) must be at least twice HeartbeatInterval (2 s)", StringComparison.Ordinal));
    }

    [Fact]
    public void An_isolated_host_keeps_its_vms_while_its_heartbeat_lands_and_fences_when_it_stops_or_the_response_says_so()
    {
        var keep = new HaTimings();
        var lands = SelfFencePolicy.HeartbeatLands(TimeSpan.FromSeconds(1.5), keep);
        Assert.True(lands);
        Assert.False(SelfFencePolicy.MustKill(haEnabled: true, leaseSafe: false, lands, TimeSpan.FromHours(1), keep, runningVms: 2));
        Assert.True(SelfFencePolicy.MayBeat(haEnabled: true, statefileKnown: true, leaseSafe: false, fenced: false, lands));

        // Its own heartbeat stopped landing (a write that began 2 s ago or more, or none at all): kill, and beat no more.
        var stale = SelfFencePolicy.HeartbeatLands(TimeSpan.FromSeconds(2), keep);
        Assert.False(stale);
        Assert.False(SelfFencePolicy.HeartbeatLands(null, keep));
        Assert.True(SelfFencePolicy.MustKill(haEnabled: true, leaseSafe: false, stale, TimeSpan.Zero, keep, runningVms: 1));
        Assert.False(SelfFencePolicy.MayBeat(haEnabled: true, statefileKnown: true, leaseSafe: false, fenced: false, stale));
        Assert.False(SelfFencePolicy.MayBeat(haEnabled: true, statefileKnown: true, leaseSafe: false, fenced: true, lands));
        Assert.True(SelfFencePolicy.MayBeat(haEnabled: true, statefileKnown: true, leaseSafe: true, fenced: true, stale));

        // The isolation response "power off after 30 s".
        var powerOff = keep with { IsolationPowerOffAfter = TimeSpan.FromSeconds(30) };
        Assert.False(SelfFencePolicy.MustKill(haEnabled: true, leaseSafe: false, lands, TimeSpan.FromSeconds(29), powerOff, runningVms: 1));
        Assert.True(SelfFencePolicy.MustKill(haEnabled: true, leaseSafe: false, lands, TimeSpan.FromSeconds(30), powerOff, runningVms: 1));
        Assert.False(SelfFencePolicy.MustKill(haEnabled: true, leaseSafe: true, lands, TimeSpan.FromSeconds(30), powerOff, runningVms: 1));
    }

    [Fact]
    public void A_watcher_cut_from_the_storage_gathers_no_evidence_that_a_heartbeat_stopped()
    {
        var watch = new HeartbeatWatch();
        var t0 = TimeSpan.FromHours(5); // the watcher's monotonic clock
        var fresh = TimeSpan.FromSeconds(6);
        TimeSpan? At(string host, double seconds) => watch.StillFor(host, t0 + TimeSpan.FromSeconds(seconds), fresh);
        Assert.Null(At("h2", 0));
        watch.Observe("h2", 7, t0);
        watch.Scanned(t0);
        watch.Observe("h2", 7, t0 + TimeSpan.FromSeconds(3));
        watch.Scanned(t0 + TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(3), At("h2", 3));
        // No read succeeds any more: while the last read is fresh the evidence stays at 3 s; once it is not, there is
        // none (h2 may have beaten since): a watcher whose reads hang never acts on what it saw before.
        Assert.Equal(TimeSpan.FromSeconds(3), At("h2", 9));
        Assert.Null(At("h2", 9.5));
        // A host never seen counts from the first successful read; a moving one from its last change.
        Assert.Equal(TimeSpan.FromSeconds(3), At("h3", 4));
        watch.Observe("h2", 8, t0 + TimeSpan.FromSeconds(4));
        watch.Scanned(t0 + TimeSpan.FromSeconds(4));
        Assert.Equal(TimeSpan.Zero, At("h2", 4));
    }
}
