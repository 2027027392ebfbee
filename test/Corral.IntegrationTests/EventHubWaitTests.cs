using System.Diagnostics;
using Corral.Api.Events;
using Corral.Model;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// <see cref="EventHub.WaitForChangeAsync"/> over a real etcd pool database: the agents' loops that used to read the
/// pool database several times a second wait there, so it must wake for a change of a class they read, even one made
/// before the wait began, and not for others.
/// </summary>
public sealed class EventHubWaitTests(EventHubWaitTests.Pool pool) : IClassFixture<EventHubWaitTests.Pool>
{
    private static readonly IReadOnlySet<string> Vms = new HashSet<string>(StringComparer.Ordinal) { XenClasses.VM };
    private readonly ApiFixture _fixture = pool.Fixture;

    /// <summary>One pool database for the class: each test waits from a position of its own.</summary>
    public sealed class Pool : IAsyncLifetime
    {
        public ApiFixture Fixture { get; private set; } = null!;

        public async Task InitializeAsync() => Fixture = await ApiFixture.StartAsync();

        public async Task DisposeAsync() => await Fixture.DisposeAsync();
    }

    private EventHub Hub => _fixture.Services.GetRequiredService<EventHub>();

    private async Task<long> SettledRevisionAsync()
    {
        await Hub.WaitReadyAsync(default);
        var revision = await _fixture.Database.GetRevisionAsync(default);
        var waited = Stopwatch.StartNew();
        while (Hub.Revision < revision && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
        }

        return Hub.Revision;
    }

    private async Task CreateVmAsync(string name)
    {
        var session = await _fixture.LoginAsync();
        await _fixture.Call("VM.create", session, new Dictionary<string, object?> { ["name_label"] = name });
    }

    [Fact]
    public async Task A_change_of_a_watched_class_wakes_the_waiter_long_before_its_backstop()
    {
        var seen = await SettledRevisionAsync();
        var waited = Stopwatch.StartNew();
        var waiting = Hub.WaitForChangeAsync(seen, Vms, TimeSpan.FromSeconds(60), TimeProvider.System, default);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted, "woke with nothing changed");

        await CreateVmAsync("wakes");
        await waiting.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task A_change_made_after_the_position_but_before_the_wait_is_not_missed()
    {
        var seen = await SettledRevisionAsync();
        await CreateVmAsync("earlier");
        await SettledRevisionAsync();

        await Hub.WaitForChangeAsync(seen, Vms, TimeSpan.FromSeconds(60), TimeProvider.System, default).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Other_classes_do_not_wake_it_and_the_backstop_ends_the_wait()
    {
        var seen = await SettledRevisionAsync();
        var waited = Stopwatch.StartNew();
        var waiting = Hub.WaitForChangeAsync(seen, new HashSet<string>(StringComparer.Ordinal) { XenClasses.SR }, TimeSpan.FromSeconds(3), TimeProvider.System, default);
        await CreateVmAsync("not an SR");
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, "a VM's change woke a wait for SRs");

        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(waited.Elapsed >= TimeSpan.FromSeconds(2.9), $"the backstop ended the wait after {waited.Elapsed}");
    }

    [Fact]
    public async Task The_callers_cancellation_ends_the_wait_as_a_cancellation()
    {
        var seen = await SettledRevisionAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Hub.WaitForChangeAsync(seen, Vms, TimeSpan.FromSeconds(60), TimeProvider.System, cancel.Token));
    }
}
