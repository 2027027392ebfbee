using Corral.Api.AllowedOperations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Operations;

/// <summary>Hands operations to hosts through the pool database, and lets callers wait for them.</summary>
public sealed class HostOperationQueue(IPoolDatabase database, TaskService tasks)
{
    public const string Prefix = PoolKeys.Operations;

    public static string KeyOf(string hostRef, string id) => $"{Prefix}{hostRef}/{id}";

    public static string HostPrefix(string hostRef) => $"{Prefix}{hostRef}/";

    /// <summary>Persists the operation for <paramref name="hostRef"/> and returns the task that will report its end.</summary>
    /// <param name="taskRef">The caller's task (an Async.* call's), or null to make one.</param>
    public async Task<string> SubmitAsync(string kind, string hostRef, string target, IDictionary<string, string> arguments,
        string sessionRef, string? taskRef, CancellationToken cancellationToken)
    {
        taskRef ??= await tasks.CreateAsync(kind, target, cancellationToken);
        var operation = new HostOperation
        {
            Id = Guid.NewGuid().ToString("N"),
            Kind = kind,
            HostRef = hostRef,
            TaskRef = taskRef,
            Target = target,
            Arguments = new Dictionary<string, string>(arguments),
        };
        await database.Leases.PutDurableAsync(operation.Key, operation.ToJson(), cancellationToken);
        return taskRef;
    }

    /// <summary>Submits and waits for the end; returns the result text (a reference, usually) or throws the failure.</summary>
    /// <param name="mark">
    /// The operation recorded on its object (<c>current_operations</c>): it runs under the mark's task, and once it is
    /// submitted the host's worker removes the mark when it ends.
    /// </param>
    public async Task<string> RunAsync(string kind, string hostRef, string target, IDictionary<string, string> arguments,
        Dispatch.CallContext context, CancellationToken cancellationToken, OperationMark? mark = null)
    {
        var taskRef = await SubmitAsync(kind, hostRef, target, arguments, context.SessionRef, mark?.TaskRef, cancellationToken);
        mark?.HandOver();
        var task = await tasks.WaitAsync(taskRef, cancellationToken);
        if (context.TaskRef is null)
        {
            // A sync caller never sees this task: remove it, as xapi does with its internal subtasks.
            var tx = new PoolTransaction();
            tx.Delete(task);
            try
            {
                await database.CommitAsync(tx, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
            }
        }

        return TaskService.DecodeResult(task.Get(XenApi.Task.Result));
    }
}
