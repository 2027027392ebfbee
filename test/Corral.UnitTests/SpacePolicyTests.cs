using Corral.Agent.Membership;
using Xunit;

namespace Corral.UnitTests;

public sealed class SpacePolicyTests
{
    private const long MiB = 1L << 20;
    private static readonly PoolDatabaseCareOptions Options = new();

    [Theory]
    [InlineData(100, 90, false, false)] // 10% free: not worth blocking the member
    [InlineData(100, 70, false, true)] // 30 MiB free, 30%
    [InlineData(40, 20, false, true)] // half free, 20 MiB
    [InlineData(20, 5, false, false)] // 75% free but only 15 MiB: under the minimum
    [InlineData(20, 19, true, true)] // out of space: always
    public void A_member_is_defragmented_once_enough_of_its_file_is_free_or_it_is_out_of_space(long file, long inUse, bool noSpace, bool expected) =>
        Assert.Equal(expected, SpacePolicy.ShouldDefragment(new MemberSpace(file * MiB, inUse * MiB, 2048 * MiB, noSpace), Options));

    [Theory]
    [InlineData(false, 79, false)]
    [InlineData(false, 80, true)]
    [InlineData(true, 75, true)] // raised and between the two shares: kept, so it does not flap
    [InlineData(false, 75, false)] // not raised and between: stays down
    [InlineData(true, 70, false)]
    public void The_nearly_full_message_rises_at_80_percent_in_use_and_clears_under_70(bool raised, long percent, bool expected) =>
        Assert.Equal(expected, SpacePolicy.NearlyFull(raised, new MemberSpace(100 * MiB, percent * MiB, 100 * MiB, false), Options));

    [Fact]
    public void An_alarm_is_disarmed_only_under_90_percent_of_the_quota()
    {
        Assert.False(SpacePolicy.MayDisarm(new MemberSpace(95 * MiB, 10 * MiB, 100 * MiB, true), Options));
        Assert.True(SpacePolicy.MayDisarm(new MemberSpace(89 * MiB, 10 * MiB, 100 * MiB, true), Options));
    }

    [Fact]
    public void Shares_out_of_order_are_refused_at_start_naming_the_setting()
    {
        Assert.Empty(Options.Problems());
        var problems = new PoolDatabaseCareOptions { ClearAtShare = 0.85 }.Problems();
        Assert.Contains(problems, p => p.Contains("Corral:Etcd:Care", StringComparison.Ordinal) && p.Contains("ClearAtShare", StringComparison.Ordinal));
    }
}
