using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api.Http;

/// <summary>
/// The task an export or import runs under, as xapi's <c>with_context</c> keeps it: the caller's (<c>task_id</c> in
/// the query or a cookie, as xe passes it) or one made for the request, named in the response's <c>task-id</c>
/// header; its progress set to 0 at the start (xe's sign that the handler took the task over), and finished with the
/// result or the error.
/// </summary>
internal sealed class XvaTask
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(2);
    private readonly TaskService _tasks;
    private readonly IPoolDatabase _database;
    private readonly bool _owned;
    private DateTime _lastProgress = DateTime.MinValue;
    private Task _pending = Task.CompletedTask;

    private XvaTask(TaskService tasks, IPoolDatabase database, string taskRef, bool owned)
    {
        _tasks = tasks;
        _database = database;
        Ref = taskRef;
        _owned = owned;
    }

    public string Ref { get; }

    public static async Task<XvaTask> StartAsync(HttpContext context, string label, CancellationToken cancellationToken)
    {
        var tasks = context.RequestServices.GetRequiredService<TaskService>();
        var database = context.RequestServices.GetRequiredService<IPoolDatabase>();
        var given = context.Request.Query["task_id"].ToString() is { Length: > 0 } q ? q : context.Request.Cookies["task_id"];
        var task = given is not null && OpaqueRef.IsWellFormed(given) && await database.TryGetAsync(XenClasses.Task, given, cancellationToken) is not null
            ? new XvaTask(tasks, database, given, owned: false)
            : new XvaTask(tasks, database, await tasks.CreateAsync(label, "", cancellationToken), owned: true);
        await tasks.SetProgressAsync(task.Ref, 0, cancellationToken);
        context.Response.Headers["task-id"] = task.Ref;
        return task;
    }

    /// <summary>The fraction done, written to the task now and then (one write at a time).</summary>
    public void Progress(double fraction)
    {
        var now = DateTime.UtcNow;
        if (now - _lastProgress < ProgressInterval || !_pending.IsCompleted)
        {
            return;
        }

        _lastProgress = now;
        _pending = _tasks.SetProgressAsync(Ref, fraction, CancellationToken.None);
    }

    public async Task SucceedAsync(object? result)
    {
        await _pending;
        await _tasks.CompleteAsync(Ref, result, CancellationToken.None);
    }

    /// <summary>The task failed with <paramref name="error"/>; the client hears it as HTTP 500, or by the connection's end once the archive had started.</summary>
    public async Task FailAsync(HttpContext context, Exception error)
    {
        await _pending;
        IReadOnlyList<string> description = error is XenApiException x ? x.ErrorDescription : [ErrorCodes.InternalError, error.Message];
        await _tasks.FailAsync(Ref, description, CancellationToken.None);
        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }

        context.Response.StatusCode = StatusCodes.Status500InternalServerError;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(string.Join(' ', description) + "\n", CancellationToken.None);
    }

    /// <summary>The request went to another host (a redirect): a task made here is removed; the caller's is left for that host.</summary>
    public async Task AbandonAsync()
    {
        if (_owned && await _database.TryGetAsync(XenClasses.Task, Ref, CancellationToken.None) is { } task)
        {
            var tx = new PoolTransaction();
            tx.Delete(task);
            await _database.TryCommitAsync(tx, CancellationToken.None);
        }
    }
}
