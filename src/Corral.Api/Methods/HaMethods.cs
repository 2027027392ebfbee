using Corral.Api.Dispatch;
using Corral.Api.HighAvailability;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Methods;

/// <summary>
/// High availability's configuration, with XenServer's messages: <c>pool.enable_ha</c> / <c>disable_ha</c>,
/// <c>pool.set_ha_host_failures_to_tolerate</c>, the <c>pool.ha_compute_*</c> questions and
/// <c>pool.ha_failover_plan_exists</c>, a VM's <c>ha_restart_priority</c>, <c>order</c> and <c>start_delay</c>, and a
/// host's power management (<c>host.set_power_on_mode</c>), which HA's fence agents use.
/// Enabling HA makes a statefile VDI on the heartbeat SR: the directory in which every host's agent keeps its storage
/// heartbeat, the second liveness channel next to its etcd lease.
/// </summary>
public sealed class HaMethods(IPoolDatabase database, FailoverPlanning planning, Placement placement, SrDrivers drivers) : IApiMethodProvider
{
    public const string StatefileName = "Statefile for HA";

    public void Register(ApiRegistry registry)
    {
        registry.Add("pool.enable_ha", (_, a, ct) => EnableAsync((List<object?>)a[0]!, (Dictionary<string, object?>)a[1]!, ct),
            ("heartbeat_srs", FieldType.RefSet(XenClasses.SR)), ("configuration", FieldType.StringMap));
        registry.Add("pool.disable_ha", (_, _, ct) => DisableAsync(ct));
        registry.Implement("SR.assert_can_host_ha_statefile", async (_, a, ct) =>
        {
            var sr = await database.GetArgumentAsync(XenClasses.SR, (string)a[0]!, ct);
            await AssertCanHostStatefileAsync(sr, await database.GetAllAsync(XenClasses.Host, ct), ct);
            return null;
        });
        registry.Add("pool.set_ha_host_failures_to_tolerate", (_, a, ct) => SetFailuresToTolerateAsync((string)a[0]!, (long)a[1]!, ct),
            ("self", FieldType.String), ("value", FieldType.Int));
        registry.Add("pool.ha_compute_max_host_failures_to_tolerate", async (_, _, ct) =>
            (object?)(long)await planning.MaxFailuresToTolerateAsync(ct));
        registry.Add("pool.ha_compute_hypothetical_max_host_failures_to_tolerate", async (_, a, ct) =>
        {
            var configuration = await PrioritiesAsync((Dictionary<string, object?>)a[0]!, ct);
            return (object?)(long)await planning.MaxFailuresToTolerateAsync(ct, configuration);
        }, ("configuration", FieldType.Map(FieldType.Ref(XenClasses.VM), FieldType.String)));
        registry.Add("pool.ha_failover_plan_exists", async (_, a, ct) =>
        {
            var n = (long)a[0]!;
            if (n < 0)
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "n", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            var snapshot = await planning.SnapshotAsync(ct);
            return (object?)FailoverPlanner.PlanExists(snapshot.Hosts, snapshot.Vms, (int)n);
        }, ("n", FieldType.Int));
        registry.Add("host.set_power_on_mode", (_, a, ct) => SetPowerOnModeAsync((string)a[0]!, (string)a[1]!, (Dictionary<string, object?>)a[2]!, ct),
            ("self", FieldType.String), ("power_on_mode", FieldType.String), ("power_on_config", FieldType.StringMap));
        registry.Add("VM.set_ha_restart_priority", (_, a, ct) => SetRestartPriorityAsync((string)a[0]!, (string)a[1]!, ct),
            ("self", FieldType.String), ("value", FieldType.String));
        registry.Add("VM.set_order", (_, a, ct) => SetVmIntAsync((string)a[0]!, "order", (long)a[1]!, ct), ("self", FieldType.String), ("value", FieldType.Int));
        registry.Add("VM.set_start_delay", (_, a, ct) => SetVmIntAsync((string)a[0]!, "start_delay", (long)a[1]!, ct), ("self", FieldType.String), ("value", FieldType.Int));
    }

    private async Task<object?> EnableAsync(List<object?> heartbeatSrs, Dictionary<string, object?> configuration, CancellationToken cancellationToken)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        if (pool.Get(XenApi.Pool.HaEnabled))
        {
            throw new XenApiException(ErrorCodes.HaIsEnabled);
        }

        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        if (hosts.Count < 2)
        {
            throw new XenApiException(ErrorCodes.HaTooFewHosts);
        }

        if (heartbeatSrs.Count == 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "heartbeat_srs", "name at least one shared SR for the storage heartbeat");
        }

        // The first SR holds the statefile.
        var srRef = (string)heartbeatSrs[0]!;
        var sr = await database.GetArgumentAsync(XenClasses.SR, srRef, cancellationToken);
        await AssertCanHostStatefileAsync(sr, hosts, cancellationToken);

        var tx = new PoolTransaction();
        var uuid = OpaqueRef.NewUuid();
        var statefile = tx.Create(XenClasses.VDISchema);
        statefile.Set(XenApi.VDI.Uuid, uuid);
        statefile.Set(XenApi.VDI.NameLabel, StatefileName);
        statefile.Set(XenApi.VDI.NameDescription, "Used for storage heartbeating");
        statefile.Set(XenApi.VDI.SR, sr.Ref);
        statefile.Set(XenApi.VDI.Type, VdiType.HaStatefile);
        // On a file SR, a directory in the SR with one heartbeat file per host; on an NFS or iSCSI SR, the SR's statefile
        // volume, one 4 KiB slot per host in this order (docs/ha.md).
        statefile.Set(XenApi.VDI.Location, "ha-statefile-" + uuid);
        statefile.Set(XenApi.VDI.VirtualSize, 4L * 1024 * 1024);
        statefile.Set(XenApi.VDI.SmConfig, new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [StatefileSlotsKey] = string.Join(',', hosts.Select(h => h.Uuid).Order(StringComparer.Ordinal)),
        });
        var p = pool.Clone();
        p.Set(XenApi.Pool.HaEnabled, true);
        p.Set(XenApi.Pool.HaStatefiles, [statefile.Ref]);
        p.Set(XenApi.Pool.HaConfiguration, XenApi.Pool.HaConfiguration.Read(configuration));
        tx.Update(p);
        await database.CommitAsync(tx, cancellationToken);
        await planning.RefreshPoolAsync(cancellationToken);
        return null;
    }

    /// <summary>The statefile VDI's sm_config key listing the hosts' uuids in heartbeat slot order.</summary>
    public const string StatefileSlotsKey = "heartbeat-slots";

    /// <summary>
    /// Whether an SR can hold HA's statefile, where every host keeps its storage heartbeat: it must be shared
    /// (HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED), of a type Corral's heartbeat writes to (a file SR's directory, or an NFS
    /// or iSCSI SR's statefile volume; else SR_OPERATION_NOT_SUPPORTED), and plugged on every host of the pool, as xapi
    /// requires (SR_HAS_NO_PBDS), or a host's heartbeat could never be seen. xapi also wants room for a 4 MiB statefile
    /// and a redo-log VDI; Corral keeps no redo log, and a volume SR's 4 MiB are allocated as the hosts first reach it.
    /// </summary>
    private async Task AssertCanHostStatefileAsync(XenObject sr, IReadOnlyList<XenObject> hosts, CancellationToken cancellationToken)
    {
        if (!sr.Get(XenApi.SR.Shared))
        {
            throw new XenApiException(ErrorCodes.HaConstraintViolationSrNotShared, sr.Ref);
        }

        if (drivers.Find(sr.Get(XenApi.SR.Type)) is not (FileSrDriver or ISharedVolumes))
        {
            throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
        }

        foreach (var host in hosts)
        {
            if (!await placement.IsPluggedAsync(sr, host.Ref, cancellationToken))
            {
                throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
            }
        }
    }

    private async Task<object?> DisableAsync(CancellationToken cancellationToken)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        if (!pool.Get(XenApi.Pool.HaEnabled))
        {
            throw new XenApiException(ErrorCodes.HaNotEnabled);
        }

        var tx = new PoolTransaction();
        foreach (var vdiRef in pool.Get(XenApi.Pool.HaStatefiles))
        {
            if (await database.TryGetAsync(XenClasses.VDI, vdiRef, cancellationToken) is { } vdi)
            {
                tx.Delete(vdi);
            }
        }

        var p = pool.Clone();
        p.Set(XenApi.Pool.HaEnabled, false);
        p.Set(XenApi.Pool.HaStatefiles, []);
        p.Set(XenApi.Pool.HaPlanExistsFor, 0L);
        p.Set(XenApi.Pool.HaOvercommitted, false);
        tx.Update(p);
        await database.CommitAsync(tx, cancellationToken);
        return null;
    }

    private async Task<object?> SetFailuresToTolerateAsync(string poolRef, long value, CancellationToken cancellationToken)
    {
        var pool = await database.GetArgumentAsync(XenClasses.Pool, poolRef, cancellationToken);

        if (value < 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "ha_host_failures_to_tolerate", value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await planning.CheckAdmissionAsync(vms => vms, cancellationToken, value);
        await database.UpdateAsync([(XenClasses.Pool, pool.Ref)], (objs, tx) =>
        {
            var p = objs[0].Clone();
            p.Set(XenApi.Pool.HaHostFailuresToTolerate, value);
            tx.Update(p);
        }, cancellationToken);
        await planning.RefreshPoolAsync(cancellationToken);
        return null;
    }

    private async Task<object?> SetRestartPriorityAsync(string vmRef, string value, CancellationToken cancellationToken)
    {
        var vm = await GetVmAsync(vmRef, cancellationToken);
        if (!RestartPriority.IsValid(value))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "ha_restart_priority", value);
        }

        if (value == RestartPriority.Restart && vm.Get(XenApi.VM.HaRestartPriority) != RestartPriority.Restart)
        {
            // A running VM becoming protected must fit the plan.
            await planning.CheckAdmissionAsync(vms => [.. vms.Select(v => v.Ref == vm.Ref ? v with { Protected = true } : v)], cancellationToken);
        }

        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VM.HaRestartPriority, value);
            // XenServer keeps the older flag in step: protected VMs are the ones HA keeps running.
            v.Set(XenApi.VM.HaAlwaysRun, value == RestartPriority.Restart);
            tx.Update(v);
        }, cancellationToken);
        await planning.RefreshPoolAsync(cancellationToken);
        return null;
    }

    /// <summary>The host's power management, which HA's fence agents use: <c>IPMI</c> (through ipmitool) or the lab's switch.</summary>
    private async Task<object?> SetPowerOnModeAsync(string hostRef, string mode, Dictionary<string, object?> config, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (!PowerFencing.Modes.Contains(mode))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "power_on_mode", $"{mode} (Corral supports \"\", IPMI and lab)");
        }

        foreach (var key in PowerFencing.RequiredKeys(mode))
        {
            if (config.GetValueOrDefault(key) is not string { Length: > 0 })
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "power_on_config", $"{mode} needs {key}");
            }
        }

        var stored = XenApi.Host.PowerOnConfig.Read(config).ToDictionary(StringComparer.Ordinal);
        var password = await Pool.PowerOnPassword.ReadAsync(database, stored, cancellationToken);
        if (password is null && PowerFencing.NeedsPassword(mode))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "power_on_config", $"{mode} needs {PowerFencing.PasswordSecretKey} (or {PowerFencing.PasswordKey})");
        }

        var oldSecret = host.Get(XenApi.Host.PowerOnConfig).GetValueOrDefault(PowerFencing.PasswordSecretKey) is { Length: > 0 } old
            ? await database.FindByUuidAsync(XenApi.Secret.ClassName, old, cancellationToken)
            : null;
        await database.UpdateAsync([(XenClasses.Host, host.Ref)], (objs, tx) =>
        {
            // As xapi: the password is kept in a secret of the host's own (a copy of the one given, which its caller may
            // destroy, as XenCenter does), never in the config where every session reads it; the old copy goes.
            stored.Remove(PowerFencing.PasswordKey);
            stored.Remove(PowerFencing.PasswordSecretKey);
            if (password is not null)
            {
                stored[PowerFencing.PasswordSecretKey] = SecretRecords.Create(tx, password).Get(XenApi.Secret.Uuid);
            }

            if (oldSecret is not null)
            {
                tx.Delete(oldSecret);
            }

            var h = objs[0].Clone();
            h.Set(XenApi.Host.PowerOnMode, mode);
            h.Set(XenApi.Host.PowerOnConfig, stored);
            tx.Update(h);
        }, cancellationToken);
        return null;
    }

    private async Task<object?> SetVmIntAsync(string vmRef, string field, long value, CancellationToken cancellationToken)
    {
        var vm = await GetVmAsync(vmRef, cancellationToken);
        if (value < 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, field, value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v[field] = value;
            tx.Update(v);
        }, cancellationToken);
        return null;
    }

    private async Task<Dictionary<string, string>> PrioritiesAsync(Dictionary<string, object?> configuration, CancellationToken cancellationToken)
    {
        var priorities = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (vmRef, value) in configuration)
        {
            var vm = await GetVmAsync(vmRef, cancellationToken);
            var priority = value as string ?? "";
            if (!RestartPriority.IsValid(priority))
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "ha_restart_priority", priority);
            }

            priorities[vm.Ref] = priority;
        }

        return priorities;
    }

    private Task<XenObject> GetVmAsync(string vmRef, CancellationToken cancellationToken) => database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);
}
