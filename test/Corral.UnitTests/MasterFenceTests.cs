using Corral.HighAvailability;
using Corral.UnitTests.Sessions;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// The survivors' fence of a silent master, probe by probe on a clock the test moves: both channels must be silent for
/// long enough, without a gap in the probing, and the master must still be master with a fence agent that works.
/// </summary>
public sealed class MasterFenceTests
{
    private static readonly HaTimings Timings = new();

    private sealed class World : IMasterFenceWorld
    {
        public bool HaEnabled { get; set; } = true;
        public bool LeaseSafe { get; set; } = true;
        public HaHost? Master { get; set; } = new("OpaqueRef:m", "m-uuid", "master", true, true, HasFenceAgent: true);
        public bool Answers { get; set; } = true;
        public TimeSpan? StillFor { get; set; } = TimeSpan.Zero;
        public bool StillMaster { get; set; } = true;
        public bool FenceWorks { get; set; } = true;
        public int Fences { get; private set; }
        public int Declared { get; private set; }

        public Task<HaHost?> MasterAsync(CancellationToken cancellationToken) => Task.FromResult(Master);
        public Task<bool> ProbeAsync(HaHost host, CancellationToken cancellationToken) => Task.FromResult(Answers);
        public long? Heartbeat(HaHost host) => 42;
        public TimeSpan? HeartbeatStillFor(HaHost host) => StillFor;
        public Task<bool> StillMasterAsync(HaHost host, CancellationToken cancellationToken) => Task.FromResult(StillMaster);

        public Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken)
        {
            Fences++;
            return Task.FromResult(FenceWorks);
        }

        public Task DeclarePowerFencedAsync(HaHost host, long? heartbeat, CancellationToken cancellationToken)
        {
            Declared++;
            return Task.CompletedTask;
        }
    }

    private readonly ManualClock _clock = new();
    private readonly World _world = new();
    private readonly MasterFence _fence;

    public MasterFenceTests() => _fence = new MasterFence(Timings, _clock, NullLogger.Instance);

    /// <summary>Probes every <see cref="HaTimings.ProbeInterval"/> for <paramref name="span"/>, the heartbeat standing still meanwhile if it was.</summary>
    private async Task<bool> ProbeForAsync(TimeSpan span)
    {
        var fenced = false;
        for (var t = TimeSpan.Zero; t <= span; t += Timings.ProbeInterval)
        {
            fenced |= await _fence.RunOnceAsync(_world, CancellationToken.None);
            _clock.Advance(Timings.ProbeInterval);
            if (_world.StillFor is { } still && still > TimeSpan.Zero)
            {
                _world.StillFor = still + Timings.ProbeInterval;
            }
        }

        return fenced;
    }

    [Fact]
    public async Task A_master_silent_on_both_channels_for_its_watchdog_timeout_is_powered_off_and_its_lease_revoked()
    {
        await ProbeForAsync(TimeSpan.FromSeconds(2));
        _world.Answers = false;
        _world.StillFor = TimeSpan.FromMilliseconds(1);
        Assert.False(await ProbeForAsync(Timings.MasterUnreachableFor - Timings.ProbeInterval));
        Assert.Equal(0, _world.Fences);

        // Silent for the watchdog timeout; the heartbeat, which stopped with it, still for a beat more.
        _world.StillFor = Timings.MasterHeartbeatStillFor;
        Assert.True(await ProbeForAsync(Timings.ProbeInterval));
        Assert.Equal(1, _world.Fences);
        Assert.Equal(1, _world.Declared);
    }

    [Fact]
    public async Task A_master_whose_heartbeat_moves_is_never_fenced_however_long_it_is_unreachable()
    {
        _world.Answers = false;
        _world.StillFor = TimeSpan.Zero;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(60.0, _fence.SilentFor.TotalSeconds, 0);

        // A survivor that cannot read the statefile has no evidence either.
        _world.StillFor = null;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, _world.Fences);
    }

    [Fact]
    public async Task A_master_that_answers_is_never_fenced_however_long_its_heartbeat_stands_still()
    {
        _world.StillFor = TimeSpan.FromSeconds(30);
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, _world.Fences);
    }

    [Fact]
    public async Task A_gap_in_the_probes_starts_the_count_again()
    {
        _world.Answers = false;
        _world.StillFor = TimeSpan.FromSeconds(30);
        await ProbeForAsync(TimeSpan.FromSeconds(2));

        // This host stalled for 5 s: the silence it measured before is not continued across the gap.
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(2)));
        Assert.Equal(0, _world.Fences);
        Assert.True(await ProbeForAsync(TimeSpan.FromSeconds(1.5)));
    }

    [Fact]
    public async Task Without_a_fence_agent_or_a_safe_lease_or_HA_nothing_is_fenced()
    {
        _world.Answers = false;
        _world.StillFor = TimeSpan.FromSeconds(30);
        _world.Master = _world.Master! with { HasFenceAgent = false };
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(10)));

        _world.Master = _world.Master with { HasFenceAgent = true };
        _world.LeaseSafe = false;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(10)));

        _world.LeaseSafe = true;
        _world.HaEnabled = false;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, _world.Fences);
    }

    [Fact]
    public async Task A_master_already_fenced_by_another_survivor_is_left_alone_and_a_failed_fence_agent_is_retried_later()
    {
        _world.Answers = false;
        _world.StillFor = TimeSpan.FromSeconds(30);
        _world.StillMaster = false;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, _world.Fences);

        _world.StillMaster = true;
        _world.FenceWorks = false;
        Assert.False(await ProbeForAsync(TimeSpan.FromSeconds(4)));
        Assert.Equal(1, _world.Fences);
        Assert.Equal(0, _world.Declared);

        _world.FenceWorks = true;
        Assert.True(await ProbeForAsync(Timings.RetryUnplaced));
        Assert.Equal(2, _world.Fences);
        Assert.Equal(1, _world.Declared);
    }
}
