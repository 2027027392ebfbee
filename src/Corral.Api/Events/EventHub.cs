using System.Globalization;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Events;

/// <summary>
/// Follows the pool database's change stream and keeps a window of recent changes in memory, so that event.from
/// callers and callers waiting on a task are served without a watch each. Tokens are pool database revisions.
/// </summary>
public sealed class EventHub(IPoolDatabase database, ILogger<EventHub> logger) : BackgroundService
{
    private const int WindowSize = 50_000;
    private readonly Lock _gate = new();
    private readonly List<PoolChange> _window = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _windowStart;
    private long _revision;

    /// <summary>The revision up to which changes are known here.</summary>
    public long Revision
    {
        get
        {
            lock (_gate)
            {
                return _revision;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_revision == 0)
                {
                    var start = await database.GetRevisionAsync(stoppingToken);
                    lock (_gate)
                    {
                        _revision = _windowStart = start;
                    }

                    _ready.TrySetResult();
                }

                await foreach (var batch in database.WatchAsync(_revision, stoppingToken))
                {
                    Publish(batch);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.EventsLost)
            {
                // Our own position was compacted away (a long partition): start a fresh window from now.
                logger.LogWarning("Event window lost its history; restarting from the current revision");
                lock (_gate)
                {
                    _window.Clear();
                    _revision = 0;
                }
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Pool database watch failed; reconnecting");
                await Task.Delay(TimeSpan.FromMilliseconds(500), stoppingToken);
            }
        }
    }

    private void Publish(IReadOnlyList<PoolChange> batch)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _window.AddRange(batch);
            _revision = Math.Max(_revision, batch[^1].Revision);
            if (_window.Count > WindowSize)
            {
                var drop = _window.Count - WindowSize;
                _windowStart = _window[drop - 1].Revision;
                _window.RemoveRange(0, drop);
            }

            signal = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        signal.TrySetResult();
    }

    public Task WaitReadyAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    /// <summary>Changes after <paramref name="afterRevision"/>, and the signal that fires when more arrive.</summary>
    /// <exception cref="XenApiException">EVENTS_LOST when that revision is older than this host's window.</exception>
    public (IReadOnlyList<PoolChange> Changes, long Revision, Task More) ChangesAfter(long afterRevision)
    {
        lock (_gate)
        {
            if (afterRevision < _windowStart)
            {
                throw new XenApiException(ErrorCodes.EventsLost);
            }

            // The window is in revision order: find the first change after the position by halving.
            int low = 0, high = _window.Count;
            while (low < high)
            {
                var middle = (low + high) / 2;
                if (_window[middle].Revision > afterRevision)
                {
                    high = middle;
                }
                else
                {
                    low = middle + 1;
                }
            }

            return (_window.GetRange(low, _window.Count - low), _revision, _changed.Task);
        }
    }

    /// <summary>Waits until the object satisfies <paramref name="done"/> and returns it as it then was.</summary>
    public async Task<XenObject> WaitForAsync(string className, string reference, Func<XenObject, bool> done, CancellationToken cancellationToken)
    {
        await WaitReadyAsync(cancellationToken);
        var position = Revision;
        var current = await database.GetAsync(className, reference, cancellationToken);
        if (done(current))
        {
            return current;
        }

        position = Math.Max(position, current.ModRevision);
        while (true)
        {
            var (changes, revision, more) = ChangesAfter(position);
            foreach (var change in changes)
            {
                if (change.Object.Ref == reference)
                {
                    if (change.Kind == ChangeKind.Del)
                    {
                        throw XenApiException.HandleInvalid(className, reference);
                    }

                    if (done(change.Object))
                    {
                        return change.Object;
                    }
                }
            }

            position = revision;
            await more.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// For loops that keep something in step with the pool database: returns once a change after
    /// <paramref name="afterRevision"/> that is <paramref name="relevant"/> (a revision read before the caller's last look)
    /// is known here, or after <paramref name="atMost"/> (a backstop: the caller looks again anyway), or at once when
    /// those changes are no longer in the window. A loop that waits here instead of on a short timer reads the pool
    /// database when something it reads changed, not several times a second.
    /// </summary>
    public async Task WaitForChangeAsync(long afterRevision, Func<PoolChange, bool> relevant, TimeSpan atMost, TimeProvider clock,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(relevant);
        ArgumentNullException.ThrowIfNull(clock);
        using var deadline = new CancellationTokenSource(atMost, clock);
        using var backstop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            // Until the watch runs, nothing here says what changed: the backstop alone paces the caller.
            await _ready.Task.WaitAsync(backstop.Token);
            var position = afterRevision;
            while (true)
            {
                var (changes, revision, more) = ChangesAfter(position);
                if (changes.Any(relevant))
                {
                    return;
                }

                position = revision;
                await more.WaitAsync(backstop.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The backstop: the caller looks again.
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.EventsLost)
        {
            // What changed is no longer known here: the caller looks again.
        }
    }

    /// <summary>As the other overload, for any change of an object of one of <paramref name="classes"/>.</summary>
    public Task WaitForChangeAsync(long afterRevision, IReadOnlySet<string> classes, TimeSpan atMost, TimeProvider clock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(classes);
        return WaitForChangeAsync(afterRevision, c => classes.Contains(c.Object.Class), atMost, clock, cancellationToken);
    }

    public static string FormatToken(long revision) => revision.ToString("D20", CultureInfo.InvariantCulture);

    public static bool TryParseToken(string token, out long revision) =>
        long.TryParse(token.Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out revision);
}
