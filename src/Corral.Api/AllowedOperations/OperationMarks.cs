using Corral.Api.Dispatch;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Records the operations running on an object in its <c>current_operations</c>, as xapi does: checked against the
/// object's rules and added in one guarded write (a second caller racing the first sees the first's entry), keyed by
/// the task the operation runs under, and removed when it ends (<see cref="OperationMark"/>; the host operation
/// worker for work handed to a host, so that an agent resuming an operation after a crash still removes it).
/// </summary>
public sealed class OperationMarks(IPoolDatabase database, TaskService tasks, ILogger<OperationMarks> logger)
{
    /// <summary>Raises the VM rules' error for <paramref name="op"/> on <paramref name="vm"/> as it is now, if any.</summary>
    public async Task AssertVmAsync(XenObject vm, VmOperations op, CancellationToken cancellationToken, bool strict = true)
    {
        if ((await VmRulesAsync(vm, op, cancellationToken, strict))(vm) is { } error)
        {
            throw error.ToException();
        }
    }

    /// <summary>
    /// The VM rules for <paramref name="op"/>, with what they read besides the VM itself read now: to check a copy of
    /// the VM read again inside a guarded write.
    /// </summary>
    public async Task<Func<XenObject, OperationError?>> VmRulesAsync(XenObject vm, VmOperations op, CancellationToken cancellationToken, bool strict = true)
    {
        var facts = await OperationFactsLoader.ForVmAsync(database, vm, cancellationToken);
        return current => VmOperationRules.Check(facts.Vm(current), op, strict);
    }

    /// <summary>
    /// Checks <paramref name="op"/> may start on the VM and records it under the caller's task (an Async call's), or
    /// under a new task for a synchronous call. <paramref name="alsoChange"/> changes the VM in the same write.
    /// </summary>
    public async Task<OperationMark> MarkVmAsync(CallContext context, string vmRef, VmOperations op, CancellationToken cancellationToken,
        bool strict = true, Action<XenObject>? alsoChange = null)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);
        var check = await VmRulesAsync(vm, op, cancellationToken, strict);
        return await MarkAsync(context, vm, check, XenEnum.ToWire(XenEnumTypes.VmOperations, op), alsoChange, cancellationToken);
    }

    public async Task<OperationMark> MarkHostAsync(CallContext context, string hostRef, HostAllowedOperations op, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        var facts = await OperationFactsLoader.ForHostAsync(database, host, cancellationToken);
        OperationError? Check(XenObject current) => HostOperationRules.Check(facts.Host(current), op);
        return await MarkAsync(context, host, Check, XenEnum.ToWire(XenEnumTypes.HostAllowedOperations, op), null, cancellationToken);
    }

    /// <summary>Records a pool operation (xapi's <c>with_pool_operation</c>): refused as the pool rules refuse it.</summary>
    public async Task<OperationMark> MarkPoolAsync(CallContext context, PoolAllowedOperations op, CancellationToken cancellationToken)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        var facts = await OperationFactsLoader.ForPoolAsync(database, cancellationToken);
        OperationError? Check(XenObject current) => PoolOperationRules.Check(facts.PoolOf(current), op);
        return await MarkAsync(context, pool, Check, XenEnum.ToWire(XenEnumTypes.PoolAllowedOperations, op), null, cancellationToken);
    }

    private async Task<OperationMark> MarkAsync(CallContext context, XenObject obj, Func<XenObject, OperationError?> check, string op,
        Action<XenObject>? alsoChange, CancellationToken cancellationToken)
    {
        // Refused before a task is made for it, when the object already says no.
        if (check(obj) is { } early)
        {
            throw early.ToException();
        }

        var ownsTask = context.TaskRef is null;
        var taskRef = context.TaskRef ?? await tasks.CreateAsync(context.MethodName, obj.Ref, cancellationToken);
        try
        {
            await database.UpdateAsync([(obj.Class, obj.Ref)], (objs, tx) =>
            {
                if (check(objs[0]) is { } error)
                {
                    throw error.ToException();
                }

                var marked = objs[0].Clone();
                var ops = (Dictionary<string, object?>)marked["current_operations"]!;
                ops[taskRef] = op;
                marked["current_operations"] = ops;
                alsoChange?.Invoke(marked);
                tx.Update(marked);
            }, cancellationToken);
        }
        catch (Exception) when (ownsTask)
        {
            await DeleteTaskAsync(taskRef);
            throw;
        }

        logger.LogDebug(AllowedOperationsEvents.Marked, "{Class} {Ref}: {Operation} runs under task {Task}", obj.Class, obj.Ref, op, taskRef);
        return new OperationMark(this, obj.Class, obj.Ref, taskRef, ownsTask);
    }

    /// <summary>Removes the entry of <paramref name="taskRef"/> from the object's <c>current_operations</c>, if there.</summary>
    public async Task ReleaseAsync(string className, string reference, string taskRef, CancellationToken cancellationToken)
    {
        if (XenClasses.Find(className)?.Find("current_operations") is null)
        {
            return;
        }

        try
        {
            await database.UpdateAsync([(className, reference)], (objs, tx) =>
            {
                var ops = (Dictionary<string, object?>)objs[0]["current_operations"]!;
                if (ops.Remove(taskRef))
                {
                    var released = objs[0].Clone();
                    released["current_operations"] = ops;
                    tx.Update(released);
                }
            }, cancellationToken);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid)
        {
            logger.LogDebug(AllowedOperationsEvents.Released, "{Class} {Ref} is gone: task {Task} has nothing to release", className, reference, taskRef);
        }
    }

    /// <summary>Removes the entry of <paramref name="taskRef"/> from whatever object <paramref name="reference"/> names.</summary>
    public async Task ReleaseAsync(string reference, string taskRef, CancellationToken cancellationToken)
    {
        if (OpaqueRef.IsWellFormed(reference) && await database.FindClassOfAsync(reference, cancellationToken) is { } className)
        {
            await ReleaseAsync(className, reference, taskRef, cancellationToken);
        }
    }

    /// <summary>The call that made <paramref name="mark"/> ends without having handed the work to a host.</summary>
    internal async Task EndAsync(OperationMark mark)
    {
        // The call's own outcome (its result or error) is what the caller must see, so a failure here is logged; the
        // master removes entries whose task has gone (AllowedOperationsService).
        try
        {
            await ReleaseAsync(mark.Class, mark.Ref, mark.TaskRef, CancellationToken.None);
        }
        catch (Exception ex)
        {
            logger.LogWarning(AllowedOperationsEvents.ReleaseFailed, ex, "Could not remove task {Task}'s entry from {Class} {Ref}", mark.TaskRef, mark.Class, mark.Ref);
        }

        if (mark.OwnsTask)
        {
            await DeleteTaskAsync(mark.TaskRef);
        }
    }

    private async Task DeleteTaskAsync(string taskRef)
    {
        try
        {
            if (await database.TryGetAsync(XenClasses.Task, taskRef, CancellationToken.None) is { } task)
            {
                var tx = new PoolTransaction();
                tx.Delete(task);
                await database.CommitAsync(tx, CancellationToken.None);
            }
        }
        catch (Exception ex)
        {
            logger.LogWarning(AllowedOperationsEvents.ReleaseFailed, ex, "Could not remove the internal task {Task}", taskRef);
        }
    }
}

/// <summary>
/// An operation recorded on an object. Disposing it removes the entry (and the task made for a synchronous call),
/// unless the work was handed to a host (<see cref="HandOver"/>), whose operation worker removes it when it ends.
/// </summary>
public sealed class OperationMark : IAsyncDisposable
{
    private readonly OperationMarks _marks;
    private bool _handedOver;

    internal OperationMark(OperationMarks marks, string className, string reference, string taskRef, bool ownsTask)
    {
        _marks = marks;
        Class = className;
        Ref = reference;
        TaskRef = taskRef;
        OwnsTask = ownsTask;
    }

    public string Class { get; }

    public string Ref { get; }

    /// <summary>The task the operation runs under: the key of its <c>current_operations</c> entry.</summary>
    public string TaskRef { get; }

    /// <summary>The task was made for this mark (a synchronous call), not given by the caller.</summary>
    public bool OwnsTask { get; }

    /// <summary>The work now runs as a host operation under <see cref="TaskRef"/>; its end releases the mark.</summary>
    public void HandOver() => _handedOver = true;

    public async ValueTask DisposeAsync()
    {
        if (!_handedOver)
        {
            await _marks.EndAsync(this);
        }
    }
}
