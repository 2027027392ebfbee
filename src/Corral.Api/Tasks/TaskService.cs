using System.Security;
using Corral.Api.Events;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Corral.Api.Sessions;

namespace Corral.Api.Tasks;

/// <summary>XenAPI tasks: pool objects tracking one asynchronous call from pending to success or failure.</summary>
public sealed class TaskService(IPoolDatabase database, EventHub events, IOptions<ApiOptions> options, ILogger<TaskService> logger)
{
    public async Task<string> CreateAsync(string label, string description, CancellationToken cancellationToken)
    {
        var transaction = new PoolTransaction();
        var task = transaction.Create(XenClasses.TaskSchema);
        task.Set(XenApi.Task.NameLabel, label);
        task.Set(XenApi.Task.NameDescription, description);
        task.Set(XenApi.Task.Created, DateTime.UtcNow);
        task.Set(XenApi.Task.Status, TaskStatusType.Pending);
        task.Set(XenApi.Task.ResidentOn, options.Value.HostRef);
        // The caller's session is written nowhere on the task: a session reference is a bearer secret, and every session
        // reads every task (xapi keeps it in a field no client sees).
        await database.CommitAsync(transaction, cancellationToken);
        return task.Ref;
    }

    /// <summary>Runs <paramref name="work"/> and records its outcome on the task.</summary>
    public async Task RunAsync(string taskRef, Func<CancellationToken, Task<object?>> work)
    {
        using var timeout = new CancellationTokenSource(options.Value.OperationTimeout);
        try
        {
            var result = await work(timeout.Token);
            await CompleteAsync(taskRef, result, CancellationToken.None);
        }
        catch (XenApiException ex)
        {
            await FailAsync(taskRef, ex.ErrorDescription, CancellationToken.None);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Task {Task} failed", taskRef);
            await FailAsync(taskRef, [ErrorCodes.InternalError, ex.Message], CancellationToken.None);
        }
    }

    public Task CompleteAsync(string taskRef, object? result, CancellationToken cancellationToken) =>
        FinishAsync(taskRef, t =>
        {
            t.Set(XenApi.Task.Status, TaskStatusType.Success);
            t.Set(XenApi.Task.Progress, 1.0);
            t.Set(XenApi.Task.Result, EncodeResult(result));
        }, cancellationToken);

    public Task FailAsync(string taskRef, IReadOnlyList<string> errorInfo, CancellationToken cancellationToken) =>
        FinishAsync(taskRef, t =>
        {
            t.Set(XenApi.Task.Status, TaskStatusType.Failure);
            t.Set(XenApi.Task.ErrorInfo, errorInfo);
        }, cancellationToken);

    public async Task SetProgressAsync(string taskRef, double progress, CancellationToken cancellationToken)
    {
        try
        {
            await database.UpdateAsync([(XenClasses.Task, taskRef)], (objs, tx) =>
            {
                var t = objs[0].Clone();
                if (t.Get(XenApi.Task.Status) == TaskStatusType.Pending)
                {
                    t.Set(XenApi.Task.Progress, Math.Clamp(progress, 0, 1));
                    tx.Update(t);
                }
            }, cancellationToken);
        }
        catch (XenApiException)
        {
            // The task was destroyed by its owner; progress no longer matters.
        }
    }

    private async Task FinishAsync(string taskRef, Action<XenObject> finish, CancellationToken cancellationToken)
    {
        try
        {
            await database.UpdateAsync([(XenClasses.Task, taskRef)], (objs, tx) =>
            {
                var t = objs[0].Clone();
                if (t.Get(XenApi.Task.Status) is TaskStatusType.Pending or TaskStatusType.Cancelling)
                {
                    finish(t);
                    t.Set(XenApi.Task.Finished, DateTime.UtcNow);
                    tx.Update(t);
                }
            }, cancellationToken);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid)
        {
            logger.LogDebug("Task {Task} was destroyed before it finished", taskRef);
        }
    }

    /// <summary>Waits until the task leaves pending and returns its result, or throws its error.</summary>
    public async Task<XenObject> WaitAsync(string taskRef, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.OperationTimeout);
        var task = await events.WaitForAsync(XenClasses.Task, taskRef,
            t => t.Get(XenApi.Task.Status) is not (TaskStatusType.Pending or TaskStatusType.Cancelling), timeout.Token);
        if (task.Get(XenApi.Task.Status) != TaskStatusType.Success)
        {
            var info = task.Get(XenApi.Task.ErrorInfo);
            throw info.Count > 0 ? new XenApiException(info[0], [.. info.Skip(1)]) : new XenApiException(ErrorCodes.TaskCancelled, taskRef);
        }

        return task;
    }

    /// <summary>xapi stores a task's result as an XML-RPC value fragment; clients parse it from there.</summary>
    public static string EncodeResult(object? result) => result switch
    {
        null => "",
        string s => $"<value>{SecurityElement.Escape(s)}</value>",
        // A set of references (VM import's new VMs), as xapi's rpc_of_ref_set writes it.
        IEnumerable<string> refs => "<value><array><data>" + string.Concat(refs.Select(r => $"<value>{SecurityElement.Escape(r)}</value>")) + "</data></array></value>",
        _ => $"<value>{SecurityElement.Escape(Convert.ToString(result, System.Globalization.CultureInfo.InvariantCulture))}</value>",
    };

    /// <summary>The inner text of a result fragment (a reference, usually).</summary>
    public static string DecodeResult(string result)
    {
        const string open = "<value>", close = "</value>";
        if (result.StartsWith(open, StringComparison.Ordinal) && result.EndsWith(close, StringComparison.Ordinal))
        {
            result = result[open.Length..^close.Length];
        }

        return System.Net.WebUtility.HtmlDecode(result);
    }
}
