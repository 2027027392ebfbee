using System.Globalization;
using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Output;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's waiter (cli_util.ml <c>track</c> and <c>result_from_task</c>): follows a task with
/// <c>event.from(["task/&lt;ref&gt;"], token, 30.)</c> until it leaves <c>pending</c> (checking its status too, so a
/// lost event cannot hang it), then returns its result or throws its error, and destroys the task. With
/// <c>--progress</c> a progress bar goes to stderr.
/// </summary>
public static class TaskWaiter
{
    public static async Task<string> WaitAsync(XenApiSession session, string task, XePrinter? progress, CancellationToken ct)
    {
        try
        {
            await TrackAsync(session, task, progress, ct);
            if (progress is not null)
            {
                progress.Stderr("\n");
            }

            return await ResultAsync(session, task, ct);
        }
        finally
        {
            try
            {
                await session.CallAsync("task.destroy", CancellationToken.None, task);
            }
            catch (XenApiException)
            {
                // The outcome is known; a task that cannot be destroyed expires on the server.
            }
        }
    }

    private static async Task TrackAsync(XenApiSession session, string task, XePrinter? progress, CancellationToken ct)
    {
        var token = "";
        while (true)
        {
            var record = XenValue.AsRecord(await session.CallAsync("task.get_record", ct, task));
            Report(progress, record);
            if (XenValue.AsString(record.GetValueOrDefault("status")) != "pending")
            {
                return;
            }

            var from = XenValue.AsRecord(await session.CallAsync("event.from", ct, new List<object?> { $"task/{task}" }, token, 30.0));
            token = XenValue.AsString(from.GetValueOrDefault("token"));
            foreach (var e in XenValue.AsList(from.GetValueOrDefault("events")).Select(XenValue.AsRecord))
            {
                if (XenValue.AsString(e.GetValueOrDefault("ref")) == task && e.GetValueOrDefault("snapshot") is { } snapshot)
                {
                    var s = XenValue.AsRecord(snapshot);
                    Report(progress, s);
                    if (XenValue.AsString(s.GetValueOrDefault("status")) != "pending")
                    {
                        return;
                    }
                }
            }
        }
    }

    private static void Report(XePrinter? progress, IReadOnlyDictionary<string, object?> task)
    {
        if (progress is not null)
        {
            progress.Stderr(ProgressBar(XenValue.AsDouble(task.GetValueOrDefault("progress"))));
        }
    }

    /// <summary>xe's progress line: <c>\r %3d%% %c ####</c>.</summary>
    public static string ProgressBar(double progress)
    {
        var percent = (int)(progress * 100);
        const string animation = "|/-\\";
        return string.Create(CultureInfo.InvariantCulture, $"\r {percent,3}% {animation[percent % animation.Length]} {new string('#', (int)(progress * 70))}");
    }

    /// <summary>xe's <c>result_from_task</c>.</summary>
    private static async Task<string> ResultAsync(XenApiSession session, string task, CancellationToken ct)
    {
        var record = XenValue.AsRecord(await session.CallAsync("task.get_record", ct, task));
        switch (XenValue.AsString(record.GetValueOrDefault("status")))
        {
            case "success":
                return XenValue.AsString(record.GetValueOrDefault("result"));
            case "cancelling":
            case "cancelled":
                throw new XenApiException(ErrorCodes.TaskCancelled, task);
            case "failure":
                var info = XenValue.AsStrings(record.GetValueOrDefault("error_info"));
                throw info.Count > 0
                    ? new XenApiException(info[0], [.. info.Skip(1)])
                    : new XenApiException(ErrorCodes.InternalError, $"Task failed but no error recorded: {task}");
            default:
                throw new XenApiException(ErrorCodes.InternalError, "wait_for_task_completion failed; task is still pending");
        }
    }

    /// <summary>Calls <c>Async.&lt;method&gt;</c> and waits for its task, as xe does for long VM operations.</summary>
    public static async Task<string> CallAsync(CommandContext c, string method, CancellationToken ct, params object?[] args)
    {
        var task = await c.CallForStringAsync("Async." + method, ct, args);
        return await WaitAsync(c.Session, task, c.Params.Has("progress") ? c.Printer : null, ct);
    }
}
