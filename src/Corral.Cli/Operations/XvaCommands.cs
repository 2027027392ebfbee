using System.Text.RegularExpressions;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's vm-export and vm-import, as XenServer's xe does them: a task made for the transfer, the XVA sent over the
/// server's <c>/export</c> or <c>/import</c> handler under it (the session and task in the query), then the task's
/// outcome: <c>Export succeeded</c>, or the new VMs' uuids.
/// </summary>
public static partial class XvaCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("vm-export", ["filename"], ["preserve-power-state", "compress", "metadata", "excluded-device-types", "include-snapshots"],
            "Export a VM to <filename>.", CommandFlags.Standard | CommandFlags.VmSelectors, ExportAsync));
        r.Add(new("vm-import", [], ["filename", "preserve", "sr-uuid", "force", "host-username", "host-password", "type", "remote-config", "dry-run", "metadata", "url", "vdi:"],
            "Import a VM. If type=ESXServer is given, it will import from a VMWare server and 'host-username', 'host-password' and 'remote-config' are required. Otherwise, it will import from a file, and 'filename' is required. If the option preserve=true is given then as many settings as possible are restored, including VIF MAC addresses. The default is to regenerate VIF MAC addresses. The VDIs will be imported into the Pool's default SR unless an override is provided. If the force option is given then any disk data checksum failures will be ignored. If the parameter 'url' is specified, xapi will attempt to import from that URL. Only metadata will be imported if 'metadata' is true",
            CommandFlags.Standard, ImportAsync));
    }

    private static async Task ExportAsync(CommandContext c, CancellationToken ct)
    {
        if (c.Params.Bool("metadata"))
        {
            throw new XeFailure("Exporting metadata only (metadata=true) is not supported by this pool.");
        }

        var filename = c.Params.Required("filename");
        var compression = c.Params.Get("compress") switch
        {
            "true" or "gzip" => "gzip",
            "zstd" => "zstd",
            null or "false" => "false",
            var other => throw new XeFailure($"Unknown compression algorithm: {other}. Use gzip, zstd, true or false."),
        };
        // A snapshot or template named by vm= or uuid= is exported too, as xe's selection of one VM allows.
        var named = c.Params.Has("vm") || c.Params.Has("uuid");
        await Selection.ForVmsAsync(c, ["filename", "metadata", "compress", "preserve-power-state", "include-snapshots", "excluded-device-types", "task-uuid"],
            async vm =>
            {
                var task = c.Params.Get("task-uuid") is { } taskUuid
                    ? await c.CallForStringAsync("task.get_by_uuid", ct, taskUuid)
                    : await c.CallForStringAsync("task.create", ct, "Export of VM", vm.Uuid);
                var query = $"/export?session_id={Uri.EscapeDataString(c.Session.Reference)}&task_id={Uri.EscapeDataString(task)}&ref={Uri.EscapeDataString(vm.Ref)}"
                            + $"&use_compression={compression}&preserve_power_state={(c.Params.Bool("preserve-power-state") ? "true" : "false")}";
                await TransferAsync(c, task, async () =>
                {
                    await using var file = new FileStream(filename, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true);
                    await c.Session.Client.GetAsync(query, file, ct);
                }, () => File.Delete(filename), ct);
                c.Printer.Line("Export succeeded");
            }, ct, multiple: false, includeTemplates: named);
    }

    private static async Task ImportAsync(CommandContext c, CancellationToken ct)
    {
        if (c.Params.Bool("metadata") || c.Params.Has("url") || c.Params.Bool("dry-run") || (c.Params.Get("type") ?? "default") != "default")
        {
            throw new XeFailure("Only the import of a full XVA file (filename=) is supported by this pool.");
        }

        var filename = c.Params.Get("filename") ?? throw XeUsageError.RequiredParameter("filename");
        if (!File.Exists(filename))
        {
            throw new XeFailure($"Failed to open file {filename}");
        }

        var sr = c.Params.Get("sr-uuid") is { } srUuid ? await c.CallForStringAsync("SR.get_by_uuid", ct, srUuid) : await DefaultSrAsync(c, ct);
        var task = await c.CallForStringAsync("task.create", ct, "VM import", "");
        var query = $"/import?session_id={Uri.EscapeDataString(c.Session.Reference)}&task_id={Uri.EscapeDataString(task)}&sr_id={Uri.EscapeDataString(sr)}"
                    + $"&restore={(c.Params.Bool("preserve") ? "true" : "false")}&force={(c.Params.Bool("force") ? "true" : "false")}";
        var result = await TransferAsync(c, task, async () =>
        {
            await using var file = new FileStream(filename, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
            await c.Session.Client.PutAsync(query, file, ct);
        }, null, ct);
        var uuids = new List<string>();
        foreach (var vm in VmRefs().Matches(result).Select(m => m.Value))
        {
            uuids.Add(await c.CallForStringAsync("VM.get_uuid", ct, vm));
        }

        c.Printer.Line(string.Join(',', uuids));
    }

    /// <summary>
    /// The transfer, then the task's outcome, which says more than the connection (a refusal before the archive, or a
    /// failure in its middle); a transfer that failed while the task says nothing is the transfer's error.
    /// </summary>
    private static async Task<string> TransferAsync(CommandContext c, string task, Func<Task> transfer, Action? onFailure, CancellationToken ct)
    {
        XenApiTransportException? failed = null;
        try
        {
            await transfer();
        }
        catch (XenApiTransportException ex)
        {
            failed = ex;
            onFailure?.Invoke();
        }

        if (failed is not null && XenValue.AsString(await c.CallAsync("task.get_status", ct, task)) == "pending")
        {
            // The handler never took the task over: it fails here, with the transfer's words.
            await c.CallAsync("task.destroy", CancellationToken.None, task);
            throw failed;
        }

        try
        {
            return await TaskWaiter.WaitAsync(c.Session, task, null, ct);
        }
        catch (XenApiException)
        {
            onFailure?.Invoke();
            throw;
        }
    }

    private static async Task<string> DefaultSrAsync(CommandContext c, CancellationToken ct)
    {
        var pool = XenValue.AsStrings(await c.CallAsync("pool.get_all", ct))[0];
        var sr = await c.CallForStringAsync("pool.get_default_SR", ct, pool);
        return sr == OpaqueRef.Null ? throw new XeFailure("No SR specified and Pool default SR is null") : sr;
    }

    [GeneratedRegex("OpaqueRef:[0-9A-Za-z-]+")]
    private static partial Regex VmRefs();
}
