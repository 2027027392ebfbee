using Corral.Api.Sessions;
using Xunit;

namespace Corral.UnitTests.Sessions;

/// <summary>Password hashes at OWASP's strength, older ones still verified and marked for replacement; verified passwords taken again without the slow hash until they change.</summary>
public sealed class PasswordTests
{
    [Fact]
    public void New_hashes_take_owasps_iterations_and_older_ones_verify_but_want_replacing()
    {
        Assert.Equal(600_000, new ApiOptions().PasswordHashIterations);
        var strong = PasswordHasher.Hash("secret");
        Assert.StartsWith("pbkdf2-sha256$600000$", strong, StringComparison.Ordinal);
        Assert.True(PasswordHasher.Verify("secret", strong));
        Assert.False(PasswordHasher.Verify("Secret", strong));
        Assert.False(PasswordHasher.NeedsRehash(strong, 600_000));

        var old = PasswordHasher.Hash("secret", 60_000);
        Assert.True(PasswordHasher.Verify("secret", old));
        Assert.True(PasswordHasher.NeedsRehash(old, 600_000));
        Assert.True(PasswordHasher.NeedsRehash("garbage", 600_000));
        Assert.False(PasswordHasher.Verify("secret", "pbkdf2-sha256$10$not base64$x"));
    }

    [Fact]
    public void A_verified_password_is_taken_again_until_it_changes_expires_or_is_wrong()
    {
        var clock = new ManualClock();
        var verified = new VerifiedPasswords(clock);
        const string stored = "pbkdf2-sha256$600000$c2FsdA==$aGFzaA==";
        Assert.False(verified.Matches("root", "pw", stored));

        verified.Remember("root", "pw", stored);
        Assert.True(verified.Matches("root", "pw", stored));
        Assert.False(verified.Matches("root", "pw2", stored));
        Assert.False(verified.Matches("alice", "pw", stored));
        // Changed anywhere in the pool: the stored hash differs, and the cache misses.
        Assert.False(verified.Matches("root", "pw", "pbkdf2-sha256$600000$b3RoZXI=$aGFzaA=="));

        clock.Advance(VerifiedPasswords.For + TimeSpan.FromSeconds(1));
        Assert.False(verified.Matches("root", "pw", stored));

        verified.Remember("root", "pw", stored);
        verified.Forget("root");
        Assert.False(verified.Matches("root", "pw", stored));
    }
}
