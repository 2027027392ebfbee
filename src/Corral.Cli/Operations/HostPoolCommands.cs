namespace Corral.Cli.Operations;

/// <summary>Hosts, the pool and tasks: host-enable, host-disable, pool-designate-new-master, task-cancel.</summary>
public static class HostPoolCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("host-enable", [], [], "Enable the XE host.", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], async host =>
            {
                // As xe does: drop the console's maintenance-mode mark, so that it does not disable the host again.
                await c.CallAsync("host.remove_from_other_config", ct, host.Ref, "MAINTENANCE_MODE").ConfigureAwait(false);
                await c.CallAsync("host.enable", ct, host.Ref).ConfigureAwait(false);
            }, ct)));
        r.Add(new("host-disable", [], ["auto-enable"],
            "Disable the XE host. Setting auto-enable=false will keep the host persistently disabled until manually re-enabled with Host.enable.",
            CommandFlags.HostSelectors, (c, ct) =>
                Selection.ForHostsAsync(c, ["auto-enable"], host => c.CallAsync("host.disable", ct, host.Ref), ct)));
        r.Add(new("pool-designate-new-master", ["host-uuid"], [], "Request an orderly handover of the role of master to another host.",
            CommandFlags.None, async (c, ct) =>
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid")).ConfigureAwait(false);
                await c.CallAsync("pool.designate_new_master", ct, host).ConfigureAwait(false);
            }));
        r.Add(new("task-cancel", ["uuid"], [], "Set a task to cancelling and return.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "task", "task.cancel", ct)));
    }
}
