using Corral.HighAvailability;
using Xunit;

namespace Corral.UnitTests.HighAvailability;

/// <summary>
/// The fence daemon's rules (<see cref="HostFence"/>): it outlives the agent (its last report stands, the lease runs out,
/// the host counts as isolated while its heartbeat lands), kills only by the self-fence's rules, stops beating once the
/// host must fence whoever killed the VMs, and holds the watchdog's pets only while killed VMs are still alive.
/// </summary>
public sealed class HostFenceTests
{
    private static readonly HaTimings Timings = new();

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static AgentReport Report(TimeSpan safeUntil, bool ha = true, long? lease = null) => new(ha, StatefileKnown: true, safeUntil, Timings, lease);

    [Fact]
    public void Before_the_agent_has_reported_nothing_is_armed_and_nothing_written()
    {
        Assert.Equal(default, new HostFence().Round(S(100), runningVms: 3));
    }

    [Fact]
    public void A_dead_agent_leaves_the_vms_running_and_the_heartbeat_beating_while_it_lands()
    {
        var fence = new HostFence();
        fence.Reported(S(10), Report(safeUntil: S(14)));
        for (var t = 10.0; t < 60; t += 1)
        {
            fence.BeatLanded(S(t));
            var round = fence.Round(S(t + 0.1), runningVms: 1);
            Assert.True(round.MayBeat, $"at {t}");
            Assert.False(round.Kill, $"at {t}");
            Assert.True(round.Armed && round.Pet, $"at {t}");
        }

        Assert.Equal(S(50.1), fence.AgentSilentFor(S(60.1)));
    }

    [Fact]
    public void When_its_heartbeat_stops_landing_without_a_safe_lease_it_kills_stops_beating_and_holds_the_pets_until_the_vms_are_gone()
    {
        var fence = new HostFence();
        fence.Reported(S(10), Report(safeUntil: S(14)));
        fence.BeatLanded(S(15));
        Assert.False(fence.Round(S(16.9), runningVms: 1).Kill);

        // Due at 17 (the last write that landed began 2 s ago); carried out after the report grace, no word having come.
        Assert.False(fence.Round(S(17), runningVms: 1).Kill);
        Assert.False(fence.Round(S(17.4), runningVms: 1).Kill);
        var kill = fence.Round(S(17.5), runningVms: 1);
        Assert.True(kill.Kill);
        Assert.Equal("its storage heartbeat no longer lands", kill.Why);
        Assert.False(kill.MayBeat);
        Assert.False(kill.Pet);
        Assert.False(fence.Round(S(17.6), runningVms: 1).Pet);
        var gone = fence.Round(S(17.7), runningVms: 0);
        Assert.True(gone.Pet);
        Assert.False(gone.MayBeat);
        Assert.True(fence.Fenced);

        // A safe lease again (the agent back, the network healed): beating resumes.
        fence.Reported(S(30), Report(safeUntil: S(35)));
        Assert.True(fence.Round(S(30.1), runningVms: 0).MayBeat);
        Assert.False(fence.Fenced);
    }

    [Fact]
    public void The_heartbeat_stops_once_the_host_must_fence_even_if_the_agent_killed_the_vms_first()
    {
        var fence = new HostFence();
        var powerOff = Timings with { IsolationPowerOffAfter = S(10) };
        fence.Reported(S(0), new AgentReport(true, true, S(5), powerOff));
        for (var t = 5.0; t < 14.9; t += 1)
        {
            fence.BeatLanded(S(t));
            Assert.True(fence.Round(S(t + 0.1), runningVms: 1).MayBeat);
        }

        fence.BeatLanded(S(15));
        Assert.True(fence.Round(S(15.1), runningVms: 0).MayBeat);
        var round = fence.Round(S(15.6), runningVms: 0);
        Assert.False(round.Kill);
        Assert.False(round.MayBeat);
        Assert.Equal("isolated for 10.5 s (the isolation response)", round.Why);
    }

    [Fact]
    public void A_host_thawing_from_a_stall_keeps_its_vms_when_the_same_lease_is_acknowledged_within_the_grace()
    {
        var fence = new HostFence();
        fence.Reported(S(10), Report(safeUntil: S(13.2), lease: 7));
        fence.BeatLanded(S(9.9));

        // Stalled from 10 to 13.3: the lease's safe time and the heartbeat's window both passed meanwhile.
        var thawed = fence.Round(S(13.3), runningVms: 2);
        Assert.False(thawed.Kill);
        Assert.False(thawed.MayBeat);
        Assert.True(thawed.Pet);

        // The first keepalive after the thaw is acknowledged: the same lease, safe again. Nothing is killed.
        fence.Reported(S(13.4), Report(safeUntil: S(16.9), lease: 7));
        var back = fence.Round(S(13.5), runningVms: 2);
        Assert.False(back.Kill);
        Assert.True(back.MayBeat);
        Assert.False(fence.Round(S(14), runningVms: 2).Kill);
        Assert.False(fence.Fenced);
    }

    [Fact]
    public void A_new_lease_does_not_call_off_a_fence_that_fell_due_under_the_old_one()
    {
        var fence = new HostFence();
        fence.Reported(S(10), Report(safeUntil: S(13.2), lease: 7));
        fence.BeatLanded(S(9.9));
        Assert.False(fence.Round(S(20), runningVms: 1).Kill);

        // The old lease expired during the stall; the agent got a new one. The old one may have let HA restart the VM.
        fence.Reported(S(20.1), Report(safeUntil: S(23.6), lease: 8));
        Assert.False(fence.Round(S(20.2), runningVms: 1).Kill);
        var kill = fence.Round(S(20.5), runningVms: 1);
        Assert.True(kill.Kill);
        Assert.Equal("the fence fell due under an earlier lease, which expired", kill.Why);

        // Carried out once: the new lease is then the host's, and it beats again.
        Assert.True(fence.Round(S(20.7), runningVms: 0).MayBeat);
        Assert.False(fence.Round(S(21), runningVms: 1).Kill);
    }

    [Fact]
    public void Ha_turned_off_disarms_the_watchdog_and_stops_the_heartbeat()
    {
        var fence = new HostFence();
        fence.Reported(S(0), Report(S(5)));
        Assert.True(fence.Round(S(1), runningVms: 1).Armed);
        fence.Reported(S(2), Report(S(7), ha: false));
        var off = fence.Round(S(3), runningVms: 1);
        Assert.False(off.Armed);
        Assert.False(off.Pet);
        Assert.False(off.MayBeat);
        Assert.False(off.Kill);
    }
}
