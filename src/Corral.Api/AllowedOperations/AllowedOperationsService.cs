using Corral.Api.Dispatch;
using Corral.Api.Events;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Keeps every object's <c>allowed_operations</c> what the rules give, as xapi's master does: on the pool master
/// only, it reads the objects the rules depend on once (when the host becomes master: everything is computed again,
/// and <c>current_operations</c> entries whose task has gone are removed), then follows the change stream, and for
/// each change computes again the objects whose rules read the changed one (a VBD's VM and VDI...), writing only
/// those whose list differs from what is stored. The lists are derived state, under keys of their own
/// (<see cref="DerivedFields"/>): writing one never touches the object, so the object's writers never lose a race to
/// it. A change of a list (its own write, or another's, such as <c>VM.update_allowed_operations</c>) is no change of
/// anything a rule reads: it starts no round, only a check of that one object when the list is not what this service
/// last knew (another writer's), so its own writes come back as nothing to do.
/// </summary>
public sealed class AllowedOperationsService(
    IPoolDatabase database,
    EventHub events,
    MasterState master,
    ApiDispatcher dispatcher,
    SrDrivers drivers,
    ILogger<AllowedOperationsService> logger) : BackgroundService
{
    private static readonly TimeSpan MasterCheck = TimeSpan.FromSeconds(1);

    private static readonly string[] MarkedClasses =
        [XenClasses.VM, XenClasses.VBD, XenClasses.VIF, XenClasses.VDI, XenClasses.SR, XenClasses.Host, XenClasses.Pool];

    private bool IsMaster => master.IsThisHost;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(MasterCheck);
        do
        {
            if (!IsMaster)
            {
                continue;
            }

            try
            {
                await FollowAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The pool database out of reach, the change window lost, or a write that kept losing its race: start
                // again from a fresh read.
                logger.LogWarning(AllowedOperationsEvents.Failed, ex, "Keeping allowed operations up to date failed; reading everything again");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task FollowAsync(CancellationToken cancellationToken)
    {
        await events.WaitReadyAsync(cancellationToken);
        // Changes after this revision are applied onto what is read next, which may already hold some of them.
        var position = await database.GetRevisionAsync(cancellationToken);
        var index = await PoolObjectIndex.LoadAsync(database, cancellationToken);
        var facts = new OperationFacts(index, OperationFactsLoader.Features(drivers));
        var calculator = new AllowedOperationsCalculator(ImplementedOperations.From(dispatcher.Registry));
        logger.LogInformation(AllowedOperationsEvents.Following, "Pool master: computing every object's allowed operations and following changes from revision {Revision}", position);
        var stored = StoredAllowedOperations.Of(index, position);
        await RemoveStaleEntriesAsync(index, MarkedClasses.SelectMany(index.All).ToList(), cancellationToken);
        var everything = AllowedOperationsCalculator.Classes.SelectMany(c => index.All(c).Select(o => (o.Class, o.Ref))).ToList();
        await RecomputeAsync(calculator, facts, stored, everything, position, cancellationToken);

        using var timer = new PeriodicTimer(MasterCheck);
        Task<bool>? tick = null;
        while (IsMaster)
        {
            var (changes, revision, more) = events.ChangesAfter(position);
            var (dirty, endedTasks) = Apply(index, stored, changes);
            position = Math.Max(position, revision);
            if (endedTasks.Count > 0)
            {
                var holders = MarkedClasses.SelectMany(index.All).Where(o => o.GetStringMap("current_operations").Keys.Any(endedTasks.Contains)).ToList();
                await RemoveStaleEntriesAsync(index, holders, cancellationToken);
            }

            await RecomputeAsync(calculator, facts, stored, dirty, position, cancellationToken);
            tick ??= timer.WaitForNextTickAsync(cancellationToken).AsTask();
            await Task.WhenAny(more, tick);
            if (tick.IsCompleted)
            {
                await tick;
                tick = null;
            }
        }

        logger.LogInformation(AllowedOperationsEvents.Stopped, "No longer the pool master: allowed operations are left to the new one");
    }

    /// <summary>
    /// Applies changes to the index and to what is known stored. Returns the objects whose allowed operations may have
    /// changed (those depending on the changed objects, before and after the change; an object whose list another
    /// writer changed) and the tasks that ended.
    /// </summary>
    private static (List<(string Class, string Ref)> Dirty, HashSet<string> EndedTasks) Apply(PoolObjectIndex index, StoredAllowedOperations stored,
        IReadOnlyList<PoolChange> changes)
    {
        var dirty = new List<(string, string)>();
        var ended = new HashSet<string>(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            var obj = change.Object;
            if (!PoolObjectIndex.IsTracked(obj.Class))
            {
                continue;
            }

            if (change.DerivedField == DerivedFields.AllowedOperations)
            {
                // Not a change of the object: only a list to check again if it is not the one this service wrote.
                if (stored.Observe(change) && index.Find(obj.Class, obj.Ref) is not null)
                {
                    dirty.Add((obj.Class, obj.Ref));
                }

                continue;
            }

            var previous = index.Find(obj.Class, obj.Ref);
            if (change.Kind == ChangeKind.Del)
            {
                if (previous is not null)
                {
                    dirty.AddRange(AllowedOperationsCalculator.Dependents(index, previous));
                    index.Remove(obj.Class, obj.Ref);
                }

                stored.Forget(obj.Class, obj.Ref);

                if (obj.Class == XenClasses.Task)
                {
                    ended.Add(obj.Ref);
                }

                continue;
            }

            if (previous is not null && obj.ModRevision < previous.ModRevision)
            {
                continue;
            }

            var relevant = previous is null || !OnlyAllowedOperationsDiffer(previous, obj);
            if (relevant && previous is not null)
            {
                dirty.AddRange(AllowedOperationsCalculator.Dependents(index, previous));
            }

            index.Put(obj);
            if (relevant)
            {
                dirty.AddRange(AllowedOperationsCalculator.Dependents(index, obj));
            }

            if (obj.Class == XenClasses.Task && obj.Get(XenApi.Task.Status) is not (TaskStatusType.Pending or TaskStatusType.Cancelling))
            {
                ended.Add(obj.Ref);
            }
        }

        return (dirty, ended);
    }

    /// <summary>
    /// True when two copies of an object differ in nothing a rule reads: only in <c>allowed_operations</c> or in reverse
    /// links, derived fields the pool database fills in when it reads an object (each copy as it was read then).
    /// </summary>
    public static bool OnlyAllowedOperationsDiffer(XenObject before, XenObject after)
    {
        var ignored = ReverseLink.Of(after.Class).Select(l => l.Field).Append(DerivedFields.AllowedOperations).ToHashSet(StringComparer.Ordinal);
        return after.Schema.Fields.Where(f => !ignored.Contains(f.Name)).All(f => FieldValues.Same(before[f.Name], after[f.Name]));
    }

    /// <summary>
    /// Computes the objects' lists from the index (which holds every change up to <paramref name="position"/>) and
    /// writes those that differ from what is stored, as computed at that revision.
    /// </summary>
    private async Task RecomputeAsync(AllowedOperationsCalculator calculator, OperationFacts facts, StoredAllowedOperations stored,
        IEnumerable<(string Class, string Ref)> objects, long position, CancellationToken cancellationToken)
    {
        foreach (var (className, reference) in objects.Distinct())
        {
            if (facts.Index.Find(className, reference) is not { } obj || calculator.Compute(facts, obj) is not { } computed
                || stored.Holds(className, reference, computed))
            {
                continue;
            }

            try
            {
                if (await database.SetAllowedOperationsAsync(className, reference, computed, position, cancellationToken) is { } revision)
                {
                    stored.Written(className, reference, computed, revision);
                    logger.LogDebug(AllowedOperationsEvents.Changed, "{Class} {Ref}: allowed operations [{Operations}]", className, reference, string.Join(", ", computed));
                }
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid)
            {
                logger.LogDebug(AllowedOperationsEvents.Vanished, "{Class} {Ref} went before its allowed operations were written", className, reference);
            }
        }
    }

    private async Task RemoveStaleEntriesAsync(PoolObjectIndex index, IReadOnlyList<XenObject> objects, CancellationToken cancellationToken)
    {
        foreach (var obj in objects)
        {
            var stale = StaleCurrentOperations.StaleEntries(obj, task => index.Find(XenClasses.Task, task));
            if (stale.Count == 0)
            {
                continue;
            }

            logger.LogInformation(AllowedOperationsEvents.StaleEntry, "{Class} {Ref}: removing operations whose task has ended or gone: {Tasks}",
                obj.Class, obj.Ref, string.Join(", ", stale));
            try
            {
                await StaleCurrentOperations.RemoveEntriesAsync(database, obj.Class, obj.Ref, stale, cancellationToken);
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid)
            {
                logger.LogDebug(AllowedOperationsEvents.Vanished, "{Class} {Ref} went before its stale operations were removed", obj.Class, obj.Ref);
            }
        }
    }
}
