using Corral.Agent.Hosting;
using Corral.Agent.Storage;
using Corral.Api.Events;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Statefile;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// HA's second liveness channel: while HA is on, this host writes a counter to its own file in the statefile directory
/// on the heartbeat SR (or its own slot of the statefile volume, on an NFS or iSCSI SR: <see cref="StatefileLocator"/>),
/// synced, every <see cref="HaOptions.HeartbeatInterval"/>: while its lease is safe, and while it
/// is isolated (lease gone, storage reachable) until it fences itself (<see cref="SelfFencePolicy.MayBeat"/>). With a
/// fence daemon (<see cref="HaOptions.FenceSocket"/>, the lab's and a package's way) the daemon writes it instead, so
/// that it outlives the agent, and this keeps what the daemon says of its writes. The
/// master reads the files to tell a dead host (heartbeat stopped) from an isolated one (lease gone, heartbeat still
/// moving), whose VMs it leaves alone. It also keeps this host's view of the HA configuration for
/// <see cref="SelfFence"/>, which must not need etcd to act.
/// </summary>
public sealed class StorageHeartbeat(
    IPoolDatabase database,
    StatefileLocator locator,
    HostIdentity identity,
    HostLiveness liveness,
    EventHub events,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<StorageHeartbeat> logger) : BackgroundService
{
    // What the HA configuration is read from, and how long a read stands without a change seen to any of it.
    private static readonly IReadOnlySet<string> ConfigurationClasses =
        new HashSet<string>(StringComparer.Ordinal) { XenClasses.Pool, XenClasses.VDI, XenClasses.SR, XenClasses.PBD };

    private static readonly TimeSpan ConfigurationRecheck = TimeSpan.FromSeconds(5);

    // How long one read of the configuration (the pool, then the statefile's VDI, SR and PBDs) may take. It runs on its
    // own loop, so a slow read delays no heartbeat; it only has to land. (It was two heartbeat intervals, 500 ms, from
    // when the read held up the beat: on a loaded host every read could miss that, and the host never learnt HA was on.)
    private static readonly TimeSpan ConfigurationReadLimit = TimeSpan.FromSeconds(5);

    private volatile bool _enabled;
    private volatile bool _configurationRead;
    private volatile StatefileTarget? _target;
    private readonly UnreachableEpisode _unreachable = new(logger, clock);
    private long _counter;
    private long _lastWrittenTicks;

    // When the last write that succeeded began, by the monotonic clock (0: none yet); and whether this host has fenced
    // itself since it last held a safe lease, which stops the heartbeat until it does again.
    private long _lastBeatBegan;
    private volatile bool _fenced;

    private readonly HeartbeatWatch _watched = new();

    // What the last read of the configuration said, as logged (a change is logged once), and how many reads in a row failed.
    private string? _loggedView;
    private int _failedReads;

    /// <summary>HA's state as last read from the pool database (kept when it cannot be read).</summary>
    public bool HaEnabled => _enabled;

    /// <summary>Whether this agent has read HA's configuration yet (until then it has nothing to tell the fence daemon).</summary>
    public bool ConfigurationRead => _configurationRead;

    /// <summary>
    /// Whether this host reaches its statefile: with HA on, its heartbeat was written within the last three intervals.
    /// (xapi refuses a clean shutdown or reboot of a host that has lost its statefile: HA_LOST_STATEFILE.)
    /// </summary>
    public bool ReachesStatefile(DateTime nowUtc) =>
        _target is not null && nowUtc - new DateTime(Interlocked.Read(ref _lastWrittenTicks), DateTimeKind.Utc) <= options.Value.HeartbeatInterval * 3;

    /// <summary>The statefile directory on this host, while HA is on and keeps it in a file SR.</summary>
    public string? StatefileDirectory => _target?.Directory;

    /// <summary>The statefile volume as exported on this host, while HA is on and keeps it in an NFS or iSCSI SR.</summary>
    public StatefileVolume? StatefileVolume => _target?.Volume;

    /// <summary>
    /// How long the host's heartbeat has stood still as this host has watched it, up to this host's last successful
    /// read of the statefile (<see cref="HeartbeatWatch.StillFor"/>); null when it has not read it within
    /// <see cref="HaTimings.HeartbeatStaleAfter"/> (evidence older than a heartbeat's staleness is none).
    /// </summary>
    public TimeSpan? StillFor(string hostUuid) =>
        _watched.StillFor(hostUuid, MonotonicClock.Now(clock), options.Value.Timings.HeartbeatStaleAfter);

    /// <summary>The host's heartbeat counter as read now from the statefile; null when it has none or HA has no statefile here.</summary>
    public long? Counter(string hostUuid) => _target?.Store.Read(hostUuid);

    /// <summary>How long ago this host's last successful heartbeat write began (monotonic); null when none has.</summary>
    public TimeSpan? SinceOwnBeatBegan => Interlocked.Read(ref _lastBeatBegan) is var began && began != 0 ? clock.GetElapsedTime(began) : null;

    /// <summary>Called by the self-fence before it kills: no more heartbeats until this host holds a safe lease again.</summary>
    public void Fenced() => _fenced = true;

    /// <summary>
    /// With a fence daemon (<see cref="HaOptions.FenceSocket"/>), the daemon writes the heartbeat and says when its last
    /// write that landed began, on the host's monotonic clock (<see cref="FenceDaemonLink"/>).
    /// </summary>
    public void DaemonBeatBegan(long timestamp)
    {
        if (timestamp > Interlocked.Read(ref _lastBeatBegan))
        {
            BeatLanded(timestamp);
        }
    }

    private void BeatLanded(long began)
    {
        Interlocked.Exchange(ref _lastWrittenTicks, clock.GetUtcNow().UtcDateTime.Ticks);
        Interlocked.Exchange(ref _lastBeatBegan, began);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The configuration is read on its own loop: a pool database out of reach (an isolated host's) must never
        // delay a heartbeat write, or the host would count its own heartbeat as no longer landing.
        var configuration = RefreshConfigurationAsync(stoppingToken);
        var watching = WatchAsync(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        do
        {
            Beat();
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));

        await configuration.ContinueWith(_ => { }, TaskScheduler.Default);
        await watching.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>
    /// Everyone's heartbeats are read every <see cref="HaTimings.ProbeInterval"/>, more often than they are written, so
    /// that how long one has stood still is known to within a probe, not a whole interval.
    /// </summary>
    private async Task WatchAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Timings.ProbeInterval, clock);
        do
        {
            if (_enabled && _target is { } watched)
            {
                await Task.Run(() => Watch(watched.Store), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
    }

    private void Beat()
    {
        var leaseSafe = liveness.LeaseSafe();
        if (leaseSafe)
        {
            _fenced = false;
        }

        var lands = SelfFencePolicy.HeartbeatLands(SinceOwnBeatBegan, options.Value.Timings);
        if (options.Value.FenceSocket is null
            && SelfFencePolicy.MayBeat(_enabled, _target is not null, leaseSafe, _fenced, lands) && _target is { } target)
        {
            Write(target.Store);
        }
    }

    private async Task RefreshConfigurationAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            // The position is taken before the read: a change made while reading wakes the next wait at once.
            var seen = events.Revision;
            var read = false;
            StatefileSpec? spec = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(ConfigurationReadLimit);
                var pool = (await database.GetAllAsync(XenClasses.Pool, timeout.Token)).SingleOrDefault();
                if (pool is not null)
                {
                    _enabled = pool.Get(XenApi.Pool.HaEnabled);
                    spec = _enabled ? await locator.ReadAsync(pool, identity.Ref, timeout.Token) : null;
                    read = true;
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // The pool database is out of reach: the last view stands, and the heartbeat goes on as the policy allows.
                NoteFailedRead(ex);
            }

            if (read)
            {
                await UseStatefileAsync(spec, stoppingToken);
                _configurationRead = true;
                NoteView(spec);
            }

            // Read again when the configuration may have changed (the pool, or the statefile's VDI, SR or PBDs), not on
            // a short timer; after a failed read, soon.
            var next = read
                ? events.WaitForChangeAsync(seen, ConfigurationClasses, ConfigurationRecheck, clock, stoppingToken)
                : Task.Delay(options.Value.HeartbeatInterval, clock, stoppingToken);
            await next.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Makes the statefile the configuration names reachable here (outside the configuration read's short patience: a
    /// volume may have to be made and exported), and lets go of one no longer named. A volume's export is checked each
    /// time, and made again if its daemon died.
    /// </summary>
    private async Task UseStatefileAsync(StatefileSpec? spec, CancellationToken stoppingToken)
    {
        var current = _target;
        StatefileTarget? next = null;
        try
        {
            next = spec is null ? null : await locator.PrepareAsync(spec, current, stoppingToken);
            if (spec is not null)
            {
                _unreachable.Succeeded(spec.SrUuid);
            }
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // The same statefile is kept (its export may answer again, or the fence daemon make it again): dropping it
            // would stop this host's heartbeat for a failure of this check alone.
            _unreachable.Failed(spec!.SrUuid, ex);
            next = current?.Spec == spec ? current : null;
        }

        _target = next;
        if (current is not null && current.Volume?.Path != next?.Volume?.Path)
        {
            await locator.ReleaseAsync(current, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Logs what this host's HA now does when it changes: off; on with its statefile here; or on with no statefile
    /// plugged on this host, when its heartbeat cannot beat and, as master, it sees no other host's.
    /// </summary>
    private void NoteView(StatefileSpec? spec)
    {
        _failedReads = 0;
        var view = !_enabled ? "off" : spec is null ? "on, no statefile" : $"on, statefile {spec.VdiUuid} on SR {spec.SrUuid}";
        if (view == _loggedView)
        {
            return;
        }

        _loggedView = view;
        if (_enabled && spec is null)
        {
            logger.LogWarning(HaEvents.HaViewChanged, "HA is on but no statefile SR is plugged on this host: its heartbeat cannot be written, nor the others' read");
        }
        else
        {
            logger.LogInformation(HaEvents.HaViewChanged, "HA as this host reads it: {View}", view);
        }
    }

    private void NoteFailedRead(Exception ex)
    {
        // One failure is a blip (logged at debug); a run of them says the view this host acts on may be stale.
        if (++_failedReads == 5)
        {
            logger.LogWarning(HaEvents.HaConfigurationUnread, ex, "HA's configuration could not be read {Count} times in a row; acting on the last view ({View})",
                _failedReads, _loggedView ?? "none yet");
        }
        else
        {
            logger.LogDebug(ex, "Could not read the HA configuration");
        }
    }

    private void Watch(IHeartbeatStore store)
    {
        var now = MonotonicClock.Now(clock);
        try
        {
            var (counters, complete) = store.ReadAll();
            foreach (var (uuid, counter) in counters)
            {
                _watched.Observe(uuid, counter, now);
            }

            // Only a read of every heartbeat is evidence that the ones that did not move stood still.
            if (complete)
            {
                _watched.Scanned(now);
            }
        }
        catch (IOException ex)
        {
            logger.LogDebug(ex, "Could not read the heartbeats in {Where}", store.Where);
        }
    }

    private void Write(IHeartbeatStore store)
    {
        try
        {
            var began = clock.GetTimestamp();
            store.Write(identity.Uuid, ++_counter, clock.GetUtcNow().UtcDateTime);
            BeatLanded(began);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not write the storage heartbeat in {Where}", store.Where);
        }
    }
}
