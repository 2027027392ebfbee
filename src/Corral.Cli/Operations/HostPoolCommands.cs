using Corral.Api.Client;

namespace Corral.Cli.Operations;

/// <summary>
/// Hosts, the pool and tasks: host-enable, host-disable, host-shutdown, host-reboot, the host's server certificate
/// (host-get-server-certificate, host-server-certificate-install, host-reset-server-certificate,
/// host-emergency-reset-server-certificate), TLS verification between hosts (pool-enable-tls-verification,
/// host-emergency-disable-tls-verification, host-emergency-reenable-tls-verification),
/// the pool's internal credentials (host-refresh-server-certificate, pool-certificate-sync, pool-secret-rotate),
/// pool membership (pool-join, pool-eject), the master's changes (pool-designate-new-master,
/// pool-emergency-transition-to-master, pool-recover-slaves), high availability (pool-ha-enable, pool-ha-disable,
/// pool-ha-compute-*), task-cancel.
/// </summary>
public static class HostPoolCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("host-enable", [], ["restore-vms"],
            "Enable the XE host. With restore-vms=true (Corral's addition, as XenCenter's Exit Maintenance Mode offers), the VMs that the last host-evacuate moved off it and that still run elsewhere live-migrate back.",
            CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, ["restore-vms"], async host =>
            {
                // As xe does: drop the console's maintenance-mode mark, so that it does not disable the host again.
                await c.CallAsync("host.remove_from_other_config", ct, host.Ref, "MAINTENANCE_MODE");
                await c.CallAsync("host.enable", ct, host.Ref);
                if (c.Params.Bool("restore-vms"))
                {
                    await TaskWaiter.CallAsync(c, "host.restore_evacuated_vms", ct, host.Ref);
                }
            }, ct)));
        r.Add(new("host-disable", [], ["auto-enable"],
            "Disable the XE host. Setting auto-enable=false will keep the host persistently disabled until manually re-enabled with Host.enable.",
            CommandFlags.HostSelectors, (c, ct) =>
                Selection.ForHostsAsync(c, ["auto-enable"], host => c.CallAsync("host.disable", ct, host.Ref), ct)));
        r.Add(new("host-shutdown", [], [], "Shutdown the XE host.", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], host => c.CallAsync("host.shutdown", ct, host.Ref), ct)));
        r.Add(new("host-reboot", [], [], "Reboot the XE host.", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], host => c.CallAsync("host.reboot", ct, host.Ref), ct)));
        r.Add(new("host-get-server-certificate", [], [], "Get the server TLS certificate of a host", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], async host =>
                c.Printer.Message(await c.CallForStringAsync("host.get_server_certificate", ct, host.Ref)), ct, multiple: false)));
        r.Add(new("host-refresh-server-certificate", ["host"], [], "Refresh internal server certificate of host", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], host => c.CallAsync("host.refresh_server_certificate", ct, host.Ref), ct, multiple: false)));
        r.Add(new("host-server-certificate-install", ["certificate", "private-key"], ["certificate-chain"], "Install a server TLS certificate on a host",
            CommandFlags.HostSelectors, (c, ct) => Selection.ForHostsAsync(c, ["certificate", "private-key", "certificate-chain"], async host =>
            {
                // As xe: the files are read where xe runs, and their contents sent.
                var chain = c.Params.Get("certificate-chain") is { } path ? await File.ReadAllTextAsync(path, ct) : "";
                await c.CallAsync("host.install_server_certificate", ct, host.Ref, await File.ReadAllTextAsync(c.Params.Required("certificate"), ct),
                    await File.ReadAllTextAsync(c.Params.Required("private-key"), ct), chain);
            }, ct, multiple: false)));
        r.Add(new("host-reset-server-certificate", [], [], "Deletes the current TLS server certificate in the host and installs a new, self-signed one.",
            CommandFlags.HostSelectors, (c, ct) => Selection.ForHostsAsync(c, [], host => c.CallAsync("host.reset_server_certificate", ct, host.Ref), ct, multiple: false)));
        r.Add(new("host-emergency-reset-server-certificate", [], [], "Deletes the current TLS server certificate in the host and installs a new, self-signed one.",
            CommandFlags.LocalLogin, (c, ct) => c.CallAsync("host.emergency_reset_server_certificate", ct)));
        r.Add(new("host-emergency-disable-tls-verification", [], [], "Disable TLS verification for this host only.",
            CommandFlags.LocalLogin, (c, ct) => c.CallAsync("host.emergency_disable_tls_verification", ct)));
        r.Add(new("host-emergency-reenable-tls-verification", [], [], "Reenable TLS verification for this host only, and only after it was emergency disabled.",
            CommandFlags.LocalLogin, (c, ct) => c.CallAsync("host.emergency_reenable_tls_verification", ct)));
        r.Add(new("pool-enable-tls-verification", [], [], "Enable TLS certificate verification", CommandFlags.None, (c, ct) =>
            c.CallAsync("pool.enable_tls_verification", ct)));
        r.Add(new("pool-sync-database", [], [], "Synchronise the current database across all hosts in the pool.", CommandFlags.None, (c, ct) =>
            c.CallAsync("pool.sync_database", ct)));
        r.Add(new("pool-certificate-sync", [], [], "Copy the TLS CA certificates and CRLs of the master to all slaves.", CommandFlags.None, (c, ct) =>
            c.CallAsync("pool.certificate_sync", ct)));
        r.Add(new("pool-secret-rotate", [], [], "Change the pool secret", CommandFlags.None, (c, ct) => c.CallAsync("pool.rotate_secret", ct)));
        r.Add(new("host-evacuate", [], [], "Migrate all VMs off a host.", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], host => TaskWaiter.CallAsync(c, "host.evacuate", ct, host.Ref), ct)));
        // Corral has no power switch of its own machines: a host shuts down as its agent and etcd member stopping (its
        // VMs moved or shut down first), and powers on through its power-on mode (IPMI, or the lab's ./lab power-on).
        r.Add(new("host-power-on", [], [], "Power on the XE host.", CommandFlags.HostSelectors, (c, ct) =>
            Selection.ForHostsAsync(c, [], host => TaskWaiter.CallAsync(c, "host.power_on", ct, host.Ref), ct)));
        r.Add(new("host-get-vms-which-prevent-evacuation", ["uuid"], [],
            "Return a list of VMs which prevent the evacuation of a specific host and display reasons for each one.", CommandFlags.None,
            async (c, ct) =>
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("uuid"));
                var blockers = await c.CallAsync("host.get_vms_which_prevent_evacuation", ct, host) as Dictionary<string, object?> ?? [];
                foreach (var (vm, reason) in blockers)
                {
                    var uuid = await c.CallForStringAsync("VM.get_uuid", ct, vm);
                    var words = (reason as List<object?> ?? []).Select(XenValue.AsString).ToList();
                    c.Printer.Line($"{uuid} {string.Join(' ', words)}");
                }
            }));
        r.Add(new("pool-ha-enable", [], ["heartbeat-sr-uuids", "ha-config:"], "Enable HA on this Pool.", CommandFlags.None, async (c, ct) =>
        {
            var srs = new List<object?>();
            foreach (var uuid in (c.Params.Get("heartbeat-sr-uuids") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                srs.Add(await c.CallForStringAsync("SR.get_by_uuid", ct, uuid));
            }

            var configuration = c.Params.Map("ha-config").ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
            await TaskWaiter.CallAsync(c, "pool.enable_ha", ct, srs, configuration);
        }));
        r.Add(new("host-set-power-on-mode", ["power-on-mode"], ["power-on-config:"],
            "Sets the power-on mode for the XE host. Corral's HA fences with it: IPMI (power-on-config:power_on_ip=, power_on_user=, and power_on_password_secret=<secret uuid> or power_on_password=, kept as a secret) or lab (power-on-config:slot=N).",
            CommandFlags.HostSelectors, (c, ct) =>
                Selection.ForHostsAsync(c, ["power-on-mode", "power-on-config"], host => c.CallAsync("host.set_power_on_mode", ct, host.Ref,
                    c.Params.Required("power-on-mode"), c.Params.Map("power-on-config").ToDictionary(kv => kv.Key, kv => (object?)kv.Value)), ct)));
        r.Add(new("pool-ha-disable", [], [], "Disable HA on this Pool.", CommandFlags.None, (c, ct) => TaskWaiter.CallAsync(c, "pool.disable_ha", ct)));
        r.Add(new("pool-ha-compute-max-host-failures-to-tolerate", [], [],
            "Compute the maximum number of host failures to tolerate under the current Pool configuration", CommandFlags.None, async (c, ct) =>
                c.Printer.Line(XenValue.AsString(await c.CallAsync("pool.ha_compute_max_host_failures_to_tolerate", ct)))));
        r.Add(new("pool-ha-compute-hypothetical-max-host-failures-to-tolerate", [], ["vm-uuid", "restart-priority"],
            "Compute the maximum number of host failures to tolerate with the supplied, proposed protected VMs.", CommandFlags.None, async (c, ct) =>
            {
                // Pairs, in order: vm-uuid=<uuid> restart-priority=<priority> [vm-uuid=... restart-priority=...].
                var uuids = c.Params.All.Where(p => p.Key == "vm-uuid").Select(p => p.Value).ToList();
                var priorities = c.Params.All.Where(p => p.Key == "restart-priority").Select(p => p.Value).ToList();
                if (uuids.Count != priorities.Count)
                {
                    throw new XeFailure("Need pairs of vm-uuid=<uuid> restart-priority=<priority>");
                }

                var configuration = new Dictionary<string, object?>(StringComparer.Ordinal);
                for (var i = 0; i < uuids.Count; i++)
                {
                    configuration[await c.CallForStringAsync("VM.get_by_uuid", ct, uuids[i])] = priorities[i];
                }

                c.Printer.Line(XenValue.AsString(await c.CallAsync("pool.ha_compute_hypothetical_max_host_failures_to_tolerate", ct, configuration)));
            }));
        r.Add(new("pool-designate-new-master", ["host-uuid"], [], "Request an orderly handover of the role of master to another host.",
            CommandFlags.None, async (c, ct) =>
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid"));
                await c.CallAsync("pool.designate_new_master", ct, host);
            }));
        r.Add(new("pool-join", ["master-address", "master-username", "master-password"], ["force"],
            "Instruct host to join an existing pool.", CommandFlags.None, (c, ct) =>
                c.CallAsync("pool.join", ct, c.Params.Required("master-address"), c.Params.Required("master-username"),
                    c.Params.Required("master-password"))));
        r.Add(new("pool-eject", ["host-uuid"], ["force"],
            "Instruct host to leave an existing pool.", CommandFlags.None, async (c, ct) =>
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid"));
                await c.CallAsync("pool.eject", ct, host);
            }));
        r.Add(new("pool-emergency-transition-to-master", [], ["force"],
            "Instruct a slave member of the pool that the master is dead and that the slave should become the new master.",
            CommandFlags.LocalLogin, (c, ct) => c.CallAsync("pool.emergency_transition_to_master", ct)));
        r.Add(new("pool-recover-slaves", [], [],
            "Instruct the pool master to try and reset the master address of all slaves currently running in emergency mode.",
            CommandFlags.None, async (c, ct) =>
            {
                var recovered = await c.CallAsync("pool.recover_slaves", ct) as List<object?> ?? [];
                foreach (var host in recovered)
                {
                    var uuid = await c.CallForStringAsync("host.get_uuid", ct, host);
                    c.Printer.Line(uuid);
                }
            }));
        r.Add(new("task-cancel", ["uuid"], [], "Set a task to cancelling and return.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "task", "task.cancel", ct)));
    }
}
