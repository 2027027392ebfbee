using Corral.Cli.Output;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's selectors (cli_operations.ml <c>select_vms</c>, <c>select_hosts</c>, <c>do_vm_op</c>): the pseudo-field
/// <c>vm=</c> (<c>host=</c>) matches a uuid or a name-label (a host's hostname too); every other parameter but the
/// standard ones and the command's own is a field filter. Templates and control domains are left out unless the
/// command takes them. No match, or several without <c>--multiple</c>, is an error in xe's words.
/// </summary>
public static class Selection
{
    public static async Task<IReadOnlyList<XenRecord>> SelectVmsAsync(CommandContext c, IEnumerable<string> ignored, CancellationToken ct,
        bool includeControlDomains = false, bool includeTemplates = false)
    {
        var filters = new List<KeyValuePair<string, string>>();
        if (!includeTemplates)
        {
            filters.Add(new("is-a-template", "false"));
        }

        if (!includeControlDomains)
        {
            filters.Add(new("is-control-domain", "false"));
        }

        var parameters = c.Params.All.ToList();
        IReadOnlyList<XenRecord> records = await c.Cache.AllAsync("VM", ct);
        var vm = parameters.FindIndex(p => p.Key == "vm");
        if (vm >= 0)
        {
            var wanted = parameters[vm].Value;
            parameters.RemoveAt(vm);
            records = records.Where(r => r.Uuid == wanted || r.Str("name_label") == wanted).ToList();
        }

        filters.AddRange(new XeParams(parameters).Filters(ignored));
        return await c.Records.FilterAsync(XeClasses.Get("vm"), records, filters, ct);
    }

    public static async Task<IReadOnlyList<XenRecord>> SelectHostsAsync(CommandContext c, IEnumerable<string> ignored, CancellationToken ct)
    {
        var parameters = c.Params.All.ToList();
        IReadOnlyList<XenRecord> records = await c.Cache.AllAsync("host", ct);
        var host = parameters.FindIndex(p => p.Key == "host");
        if (host >= 0)
        {
            var wanted = parameters[host].Value;
            parameters.RemoveAt(host);
            records = records.Where(r => r.Uuid == wanted || r.Str("hostname") == wanted || r.Str("name_label") == wanted).ToList();
        }

        return await c.Records.FilterAsync(XeClasses.Get("host"), records, new XeParams(parameters).Filters(ignored), ct);
    }

    /// <summary>xe's <c>do_vm_op</c>: one VM, or several with --multiple (every one tried, failures reported together).</summary>
    public static async Task<IReadOnlyList<T>> ForVmsAsync<T>(CommandContext c, IEnumerable<string> ignored, Func<XenRecord, Task<T>> op, CancellationToken ct,
        bool multiple = true, bool includeControlDomains = false, bool includeTemplates = false)
    {
        var vms = await SelectVmsAsync(c, ignored, ct, includeControlDomains, includeTemplates);
        return vms.Count switch
        {
            0 => throw new XeFailure("No matching VMs found"),
            1 => [await op(vms[0])],
            _ when multiple && c.Params.Bool("multiple") => await ForEachAsync(c, vms, op, ct),
            _ => throw new XeFailure(multiple
                ? "Multiple matches VMs found. --multiple required to complete the operation"
                : "Multiple matches VMs found. Operation can only be performed on one VM at a time"),
        };
    }

    public static Task ForVmsAsync(CommandContext c, IEnumerable<string> ignored, Func<XenRecord, Task> op, CancellationToken ct,
        bool multiple = true, bool includeControlDomains = false, bool includeTemplates = false) =>
        ForVmsAsync(c, ignored, async vm =>
        {
            await op(vm);
            return true;
        }, ct, multiple, includeControlDomains, includeTemplates);

    /// <summary>xe's <c>do_host_op</c>; with <paramref name="multiple"/> false, one host only, whatever --multiple says.</summary>
    public static async Task ForHostsAsync(CommandContext c, IEnumerable<string> ignored, Func<XenRecord, Task> op, CancellationToken ct, bool multiple = true)
    {
        var hosts = await SelectHostsAsync(c, ignored, ct);
        switch (hosts.Count)
        {
            case 0:
                throw new XeFailure("No matching hosts found");
            case 1:
                await op(hosts[0]);
                break;
            default:
                if (!multiple || !c.Params.Bool("multiple"))
                {
                    throw new XeFailure(multiple
                        ? "Multiple matching hosts found. --multiple required to complete the operation"
                        : "Multiple matching hosts found. Operation can only be performed on one host at a time");
                }

                await ForEachAsync(c, hosts, async h =>
                {
                    await op(h);
                    return true;
                }, ct);
                break;
        }
    }

    /// <summary>xe's <c>do_multiple</c>: tries every object, then reports every failure (newest first, as xe does).</summary>
    private static async Task<IReadOnlyList<T>> ForEachAsync<T>(CommandContext c, IReadOnlyList<XenRecord> objects, Func<XenRecord, Task<T>> op, CancellationToken ct)
    {
        var results = new List<T>();
        var failures = new List<(string Uuid, string Message)>();
        foreach (var o in objects)
        {
            try
            {
                results.Add(await op(o));
            }
            catch (XenApiException ex)
            {
                var parameters = await ErrorText.ConvertReferencesAsync(ex, c.Cache, c.Session, ct);
                var message = XenApiErrorDocs.Find(ex.Code) is { } doc
                    ? string.Join("\n", [doc.Description, .. ErrorText.DescribeParameters(doc.Parameters, parameters)])
                    : ErrorText.Short(ex.Code, parameters);
                failures.Insert(0, (o.Uuid, message));
            }
            catch (CliException ex)
            {
                failures.Insert(0, (o.Uuid, ErrorText.Short(ErrorCodes.InternalError, [ex.Message])));
            }
        }

        if (failures.Count > 0)
        {
            throw new XeMultipleFailure(failures);
        }

        results.Reverse();
        return results;
    }

    /// <summary>xe's <c>get_host_by_name_or_id</c>: the first host whose name-label or uuid is the given text.</summary>
    public static async Task<XenRecord> HostByNameOrIdAsync(CommandContext c, string nameOrId, CancellationToken ct)
    {
        var hosts = await c.Cache.AllAsync("host", ct);
        return hosts.FirstOrDefault(h => h.Str("name_label") == nameOrId || h.Uuid == nameOrId)
               ?? throw new XeFailure($"Host {nameOrId} not found");
    }
}
