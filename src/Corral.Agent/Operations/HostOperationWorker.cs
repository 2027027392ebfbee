using System.Collections.Concurrent;
using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Api.AllowedOperations;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Operations;

/// <summary>
/// Picks up the operations addressed to this host from the pool database (those left from before a restart first),
/// runs each through its handler, records the outcome on the caller's task, and removes the operation.
/// </summary>
public sealed class HostOperationWorker(
    IPoolDatabase database,
    HostIdentity identity,
    IEnumerable<IHostOperationHandler> handlers,
    TaskService tasks,
    OperationMarks marks,
    VmSupervisor supervisor,
    ILogger<HostOperationWorker> logger) : BackgroundService
{
    private readonly Dictionary<string, IHostOperationHandler> _handlers = handlers
        .SelectMany(h => h.Kinds.Select(k => (k, h))).ToDictionary(x => x.k, x => x.h, StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _targetLocks = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // VMs still running from before a restart must be known before any operation touches them.
        await supervisor.AdoptAsync(stoppingToken);
        await supervisor.RecordVanishedAsync(stoppingToken);
        var prefix = HostOperationQueue.HostPrefix(identity.Ref);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var revision = await database.GetRevisionAsync(stoppingToken);
                foreach (var (key, value) in await database.Leases.GetPrefixAsync(prefix, stoppingToken))
                {
                    Launch(key, value, stoppingToken);
                }

                await foreach (var change in database.Leases.WatchPrefixAsync(prefix, revision, stoppingToken))
                {
                    if (change.Value is not null)
                    {
                        Launch(change.Key, change.Value, stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Watching operations failed; retrying");
                await Task.Delay(500, stoppingToken);
            }
        }

        await Task.WhenAll(_running.Values);
    }

    private void Launch(string key, string json, CancellationToken stoppingToken)
    {
        HostOperation operation;
        try
        {
            operation = HostOperation.FromJson(json);
        }
        catch (System.Text.Json.JsonException ex)
        {
            logger.LogError(ex, "Unreadable operation at {Key}", key);
            return;
        }

        // Our own step updates come back through the watch: an operation already running is not started twice.
        if (_running.ContainsKey(operation.Id))
        {
            return;
        }

        _running[operation.Id] = Task.Run(async () =>
        {
            try
            {
                await RunAsync(operation, stoppingToken);
            }
            finally
            {
                _running.TryRemove(operation.Id, out _);
            }
        }, CancellationToken.None);
    }

    private async Task RunAsync(HostOperation operation, CancellationToken stoppingToken)
    {
        var gate = _targetLocks.GetOrAdd(operation.Target, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(stoppingToken);
        try
        {
            logger.LogInformation("Operation {Kind} on {Target} ({Id}) from step {Step}", operation.Kind, operation.Target, operation.Id, operation.Step);
            if (await OutcomeAsync(operation, stoppingToken) is not { } outcome)
            {
                // The agent is stopping: the operation stays persisted and resumes at the next start.
                return;
            }

            await RecordAsync(operation, outcome, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping while the outcome was being recorded: the operation stays persisted and resumes at the next start.
        }
        catch (Exception ex)
        {
            // Never silent (an exception here would end an unobserved task, and the caller would wait out its timeout).
            logger.LogError(HostOperationEvents.Unrecorded, ex, "Operation {Kind} on {Target} ({Id}) ended but its outcome could not be recorded",
                operation.Kind, operation.Target, operation.Id);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Runs the operation's handler: its result, its error, or null when the agent stops meanwhile.</summary>
    private async Task<OperationOutcome?> OutcomeAsync(HostOperation operation, CancellationToken stoppingToken)
    {
        if (!_handlers.TryGetValue(operation.Kind, out var handler))
        {
            return OperationOutcome.Failed([ErrorCodes.NotImplemented, operation.Kind]);
        }

        var progress = new OperationProgress(SaveAsync, operation);
        try
        {
            return OperationOutcome.Succeeded(await handler.ExecuteAsync(operation, progress, stoppingToken));
        }
        catch (XenApiException ex)
        {
            logger.LogInformation("Operation {Kind} on {Target} failed: {Error}", operation.Kind, operation.Target, ex.Message);
            return OperationOutcome.Failed(ex.ErrorDescription);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Operation {Kind} on {Target} failed", operation.Kind, operation.Target);
            return OperationOutcome.Failed([ErrorCodes.InternalError, ex.Message]);
        }
    }

    /// <summary>
    /// Records the outcome: the object's mark released, the caller's task ended, the operation removed, in that order.
    /// The caller waits on the task, so a write that fails (the pool database out of reach for a moment) is tried again
    /// until it lands or the agent stops (the operation then resumes at the next start); each step is idempotent.
    /// </summary>
    private async Task RecordAsync(HostOperation operation, OperationOutcome outcome, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ReleaseAsync(operation, stoppingToken);
                await (outcome.Error is { } error
                    ? tasks.FailAsync(operation.TaskRef, error, stoppingToken)
                    : tasks.CompleteAsync(operation.TaskRef, outcome.Result, stoppingToken));
                await database.Leases.DeleteAsync(operation.Key, stoppingToken);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(5000, 250 * attempt));
                logger.LogWarning(HostOperationEvents.RecordRetried, ex, "Could not record the end of operation {Kind} on {Target} ({Id}), attempt {Attempt}; trying again in {Delay}",
                    operation.Kind, operation.Target, operation.Id, attempt, delay);
                await Task.Delay(delay, stoppingToken);
            }
        }
    }

    /// <summary>
    /// The operation has ended: its entry in its object's current_operations (made by the API call that queued it,
    /// under the same task) goes before the task says it has ended, as xapi removes it before the call returns.
    /// </summary>
    private Task ReleaseAsync(HostOperation operation, CancellationToken cancellationToken) =>
        marks.ReleaseAsync(operation.Target, operation.TaskRef, cancellationToken);

    private async Task<HostOperation> SaveAsync(HostOperation operation, CancellationToken cancellationToken)
    {
        await database.Leases.PutDurableAsync(operation.Key, operation.ToJson(), cancellationToken);
        return operation;
    }
}
