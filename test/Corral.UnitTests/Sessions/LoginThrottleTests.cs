using Corral.Api.Sessions;
using Corral.Model;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.UnitTests.Sessions;

public sealed class LoginThrottleTests
{
    private readonly ManualClock _clock = new();
    private readonly LoginThrottle _throttle;

    public LoginThrottleTests() =>
        _throttle = new LoginThrottle(Options.Create(new ApiOptions()), _clock, NullLogger<LoginThrottle>.Instance);

    private string? Refusal(string? user, string source)
    {
        try
        {
            _throttle.ThrowIfThrottled(user, source);
            return null;
        }
        catch (XenApiException ex)
        {
            Assert.Equal(ErrorCodes.SessionAuthenticationFailed, ex.Code);
            return ex.ErrorDescription[^1];
        }
    }

    [Fact]
    public void Five_failures_for_a_user_stop_its_logins_until_one_is_forgiven()
    {
        for (var i = 0; i < 4; i++)
        {
            _throttle.Failed("alice", "10.0.0.1", "test");
        }

        Assert.Null(Refusal("alice", "10.0.0.1"));
        _throttle.Failed("alice", "10.0.0.1", "test");
        Assert.Equal("Too many failed logins for this user or from this address; try again in 30 s", Refusal("alice", "10.0.0.1"));
        // From anywhere else too, and only for that user.
        Assert.NotNull(Refusal("alice", "10.0.0.2"));
        Assert.Null(Refusal("bob", "10.0.0.2"));

        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal("Too many failed logins for this user or from this address; try again in 1 s", Refusal("alice", "10.0.0.1"));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(Refusal("alice", "10.0.0.1"));
        _throttle.Failed("alice", "10.0.0.1", "test");
        Assert.NotNull(Refusal("alice", "10.0.0.1"));
    }

    [Fact]
    public void An_address_the_user_logged_in_from_is_not_locked_out_by_guesses_from_elsewhere()
    {
        _throttle.Succeeded("root", "10.0.0.9");
        for (var i = 0; i < 10; i++)
        {
            _throttle.Failed("root", "10.0.0.66", "test");
        }

        Assert.NotNull(Refusal("root", "10.0.0.66"));
        Assert.NotNull(Refusal("root", "10.0.0.67"));
        Assert.Null(Refusal("root", "10.0.0.9"));
    }

    [Fact]
    public void Failures_past_full_do_not_lengthen_the_wait_for_everyone_else()
    {
        // An address the user logged in from is exempt from the user's bucket, so its guesses are all checked; a hundred
        // of them leave the user's bucket full, not a hundred deep: elsewhere the wait is one forgiveness, as after five.
        _throttle.Succeeded("alice", "10.0.0.9");
        for (var i = 0; i < 100; i++)
        {
            _throttle.Failed("alice", "10.0.0.9", "test");
        }

        Assert.Equal("Too many failed logins for this user or from this address; try again in 30 s", Refusal("alice", "10.0.0.2"));
        _clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Null(Refusal("alice", "10.0.0.2"));
    }

    [Fact]
    public void Twenty_failures_from_one_address_stop_every_login_from_it()
    {
        for (var i = 0; i < 20; i++)
        {
            _throttle.Failed("user" + i, "10.0.0.5", "test");
        }

        Assert.NotNull(Refusal("someone-else", "10.0.0.5"));
        Assert.NotNull(Refusal(null, "10.0.0.5"));
        Assert.Null(Refusal("someone-else", "10.0.0.6"));
    }

    [Fact]
    public void Wrong_pool_secrets_count_against_their_address_only()
    {
        for (var i = 0; i < 20; i++)
        {
            _throttle.Failed(null, "10.0.0.7", "session.slave_login");
        }

        Assert.NotNull(Refusal(null, "10.0.0.7"));
        // The pool's own hosts, elsewhere, go on logging in.
        Assert.Null(Refusal(null, "10.0.0.8"));
    }

    [Fact]
    public void Buckets_stay_bounded_under_a_flood_of_names()
    {
        for (var i = 0; i < LoginThrottle.MaxBuckets + 100; i++)
        {
            _throttle.Failed("u" + i, "10.1." + (i / 250) + "." + (i % 250), "test");
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.True(_throttle.Count <= LoginThrottle.MaxBuckets, $"{_throttle.Count} buckets");
    }
}
