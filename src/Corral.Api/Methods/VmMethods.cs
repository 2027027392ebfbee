using System.Globalization;
using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>The VM class's own messages: lifecycle, cloning, memory and vCPU settings.</summary>
public sealed class VmMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations, VmStarter starter, OperationMarks marks,
    VmProvisioning provisioning)
    : IApiMethodProvider
{
    private static readonly FieldType Ref = FieldType.String;

    public void Register(ApiRegistry registry)
    {
        registry.Add("VM.start", (ctx, a, ct) => StartAsync(ctx, (string)a[0]!, null, (bool)a[1]!, ct),
            ("vm", Ref), ("start_paused", FieldType.Bool), ("force", FieldType.Bool));
        registry.Add("VM.start_on", (ctx, a, ct) => StartAsync(ctx, (string)a[0]!, (string)a[1]!, (bool)a[2]!, ct),
            ("vm", Ref), ("host", Ref), ("start_paused", FieldType.Bool), ("force", FieldType.Bool));
        registry.Add("VM.clean_shutdown", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmCleanShutdown, VmOperations.CleanShutdown, ct), ("vm", Ref));
        registry.Add("VM.hard_shutdown", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmHardShutdown, VmOperations.HardShutdown, ct), ("vm", Ref));
        registry.Add("VM.shutdown", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmCleanShutdown, VmOperations.Shutdown, ct, fallbackHard: true), ("vm", Ref));
        // Not strict: without the guest agent Corral's clean reboot resets the VM, as it always has when asked; it is
        // listed in allowed_operations only while the agent reports.
        registry.Add("VM.clean_reboot", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmCleanReboot, VmOperations.CleanReboot, ct, strict: false), ("vm", Ref));
        registry.Add("VM.hard_reboot", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmHardReboot, VmOperations.HardReboot, ct), ("vm", Ref));
        registry.Add("VM.pause", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmPause, VmOperations.Pause, ct), ("vm", Ref));
        registry.Add("VM.unpause", (ctx, a, ct) => OnResidentHostAsync(ctx, (string)a[0]!, HostOperationKinds.VmUnpause, VmOperations.Unpause, ct), ("vm", Ref));
        registry.Add("VM.destroy", (_, a, ct) => DestroyAsync((string)a[0]!, ct), ("self", Ref));
        registry.Implement("VM.create", (_, a, ct) => CreateAsync((Dictionary<string, object?>)a[0]!, ct));
        registry.Add("VM.clone", (ctx, a, ct) => CopyAsync(ctx, (string)a[0]!, (string)a[1]!, null, ct), ("vm", Ref), ("new_name", FieldType.String));
        registry.Add("VM.copy", (ctx, a, ct) => CopyAsync(ctx, (string)a[0]!, (string)a[1]!, (string)a[2]!, ct), ("vm", Ref), ("new_name", FieldType.String), ("sr", Ref));
        registry.Add("VM.provision", async (ctx, a, ct) =>
        {
            var vm = await GetVmAsync((string)a[0]!, ct);
            await marks.AssertVmAsync(vm, VmOperations.Provision, ct);
            await provisioning.ProvisionAsync(registry, ctx, vm, ct);
            return null;
        }, ("vm", Ref));
        registry.Add("VM.set_memory_limits", (_, a, ct) => SetMemoryAsync((string)a[0]!, (long)a[1]!, (long)a[2]!, (long)a[3]!, (long)a[4]!, ct),
            ("self", Ref), ("static_min", FieldType.Int), ("static_max", FieldType.Int), ("dynamic_min", FieldType.Int), ("dynamic_max", FieldType.Int));
        registry.Add("VM.set_memory", (_, a, ct) => SetMemoryAsync((string)a[0]!, null, (long)a[1]!, (long)a[1]!, (long)a[1]!, ct), ("self", Ref), ("value", FieldType.Int));
        // memory_dynamic_max and _min are set through the dynamic range (LiveResize.LiveResizeMethods), running or not.
        foreach (var field in new[] { "memory_static_max", "memory_static_min" })
        {
            registry.Add($"VM.set_{field}", (_, a, ct) => SetHaltedFieldAsync((string)a[0]!, field, a[1], ct), ("self", Ref), ("value", FieldType.Int));
        }

        registry.Add("VM.set_VCPUs_max", (_, a, ct) => SetHaltedFieldAsync((string)a[0]!, "VCPUs_max", a[1], ct), ("self", Ref), ("value", FieldType.Int));
        registry.Add("VM.set_VCPUs_at_startup", (_, a, ct) => SetHaltedFieldAsync((string)a[0]!, "VCPUs_at_startup", a[1], ct), ("self", Ref), ("value", FieldType.Int));
        registry.Add("VM.set_is_a_template", (_, a, ct) => SetHaltedFieldAsync((string)a[0]!, "is_a_template", a[1], ct), ("self", Ref), ("value", FieldType.Bool));
        registry.Add("VM.get_boot_record", async (_, a, ct) => (await database.GetAsync(XenClasses.VM, (string)a[0]!, ct)).ToRecord(), ("self", Ref));
    }

    private Task<XenObject> GetVmAsync(string vmRef, CancellationToken cancellationToken) => database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);

    private async Task<object?> StartAsync(CallContext context, string vmRef, string? hostRef, bool paused, CancellationToken cancellationToken)
    {
        await starter.StartAsync(context, vmRef, hostRef, paused, cancellationToken);
        return null;
    }

    /// <summary>
    /// An operation the VM's host carries out, recorded in the VM's current_operations (checked against its rules)
    /// until that host's worker ends it.
    /// </summary>
    private async Task<object?> OnResidentHostAsync(CallContext context, string vmRef, string kind, VmOperations op, CancellationToken cancellationToken,
        bool fallbackHard = false, bool strict = true)
    {
        await using var mark = await marks.MarkVmAsync(context, vmRef, op, cancellationToken, strict);
        var vm = await GetVmAsync(vmRef, cancellationToken);
        var hostRef = vm.Get(XenApi.VM.ResidentOn);
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken)
                   ?? throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        if (!await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        }

        var arguments = new Dictionary<string, string>();
        if (fallbackHard)
        {
            arguments["fallback_hard"] = "true";
        }

        await operations.RunAsync(kind, hostRef, vmRef, arguments, context, cancellationToken, mark);
        return null;
    }

    private async Task<object?> DestroyAsync(string vmRef, CancellationToken cancellationToken)
    {
        var vm = await GetVmAsync(vmRef, cancellationToken);
        // The transaction below is guarded by the revision read here, so the VM checked is the VM deleted.
        await marks.AssertVmAsync(vm, VmOperations.Destroy, cancellationToken);

        // VBDs, VIFs and metrics go with the VM; its VDIs stay (XenServer's vm-uninstall removes those separately).
        var tx = new PoolTransaction();
        tx.Delete(vm);
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd)
            {
                tx.Delete(vbd);
            }
        }

        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif)
            {
                tx.Delete(vif);
            }
        }

        // Its vTPMs and their contents too, as xapi's VM.destroy.
        foreach (var vtpmRef in vm.Get(XenApi.VM.VTPMs))
        {
            if (await database.TryGetAsync(XenApi.VTPM.ClassName, vtpmRef, cancellationToken) is { } vtpm)
            {
                await VtpmRecords.DeleteAsync(database, tx, vtpm, cancellationToken);
            }
        }

        foreach (var (cls, field) in new[] { (XenClasses.VMMetrics, "metrics"), (XenClasses.VMGuestMetrics, "guest_metrics") })
        {
            if (await database.TryGetAsync(cls, vm.GetString(field), cancellationToken) is { } m)
            {
                tx.Delete(m);
            }
        }

        // Its children (the snapshots taken after it, or the VM it was taken of) take its parent, as in xapi.
        foreach (var childRef in vm.Get(XenApi.VM.Children))
        {
            if (await database.TryGetAsync(XenClasses.VM, childRef, cancellationToken) is { } child)
            {
                var rebased = child.Clone();
                rebased.Set(XenApi.VM.Parent, vm.Get(XenApi.VM.Parent));
                tx.Update(rebased);
            }
        }

        await database.CommitAsync(tx, cancellationToken);
        return null;
    }

    private async Task<object?> CreateAsync(Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        var fields = ConstructorRecord.Fields(XenClasses.VMSchema, record);
        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        metrics.Set(XenApi.VMMetrics.InstallTime, DateTime.UtcNow);
        var vm = tx.Create(XenClasses.VMSchema, fields);
        vm.Set(XenApi.VM.Metrics, metrics.Ref);
        vm.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        ValidateMemory(vm);
        await database.CommitAsync(tx, cancellationToken);
        return vm.Ref;
    }

    /// <summary>
    /// VM.clone and VM.copy: a new halted VM with the same configuration, and its own full copy of each disk, made by
    /// a host that sees both SRs (into <paramref name="srRef"/>, or next to the original for clone).
    /// </summary>
    private async Task<object?> CopyAsync(CallContext context, string vmRef, string newName, string? srRef, CancellationToken cancellationToken)
    {
        await using var mark = await marks.MarkVmAsync(context, vmRef, srRef is null ? VmOperations.Clone : VmOperations.Copy, cancellationToken);
        var source = await GetVmAsync(vmRef, cancellationToken);
        if (srRef is not null && !OpaqueRef.IsWellFormed(srRef))
        {
            throw XenApiException.HandleInvalid(XenClasses.SR, srRef);
        }

        var newDisks = new List<(XenObject Vbd, string? NewVdi)>();
        foreach (var vbdRef in source.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            string? newVdi = null;
            if (vbd.Get(XenApi.VBD.Type) == VbdType.Disk && !vbd.Get(XenApi.VBD.Empty))
            {
                var vdi = await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken);
                newVdi = await StorageMethods.CopyVdiAsync(database, operations, context, vdi, srRef ?? vdi.Get(XenApi.VDI.SR), cancellationToken);
            }

            newDisks.Add((vbd, newVdi));
        }

        var tx = new PoolTransaction();
        var fields = source.ToRecord();
        // A copy of a snapshot is a new template of its own, outside the snapshot tree (xapi's clone of a snapshot).
        foreach (var reset in new[] { "uuid", "VBDs", "VIFs", "resident_on", "scheduled_to_be_resident_on", "current_operations", "allowed_operations", "guest_metrics", "metrics", "domid", "is_default_template",
                     "snapshots", "children", "parent", "is_a_snapshot", "snapshot_of", "snapshot_time", "snapshot_info", "snapshot_metadata", "transportable_snapshot_id", "consoles", "VTPMs" })
        {
            fields.Remove(reset);
        }

        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        metrics.Set(XenApi.VMMetrics.InstallTime, DateTime.UtcNow);
        var clone = tx.Create(XenClasses.VMSchema, fields);
        clone.Set(XenApi.VM.NameLabel, newName);
        clone.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        // A copy of a default template is not one itself; xapi drops these keys on clone too.
        clone.Set(XenApi.VM.OtherConfig, source.Get(XenApi.VM.OtherConfig).Where(kv => kv.Key is not ("default_template" or "xensource_internal"))
            .ToDictionary());
        clone.Set(XenApi.VM.Metrics, metrics.Ref);
        foreach (var (vbd, newVdi) in newDisks)
        {
            var copy = vbd.ToRecord();
            copy.Remove("uuid");
            var created = tx.Create(XenClasses.VBDSchema, copy);
            created.Set(XenApi.VBD.VM, clone.Ref);
            created.Set(XenApi.VBD.VDI, newVdi ?? vbd.Get(XenApi.VBD.VDI));
            created.Set(XenApi.VBD.CurrentlyAttached, false);
            created.Set(XenApi.VBD.CurrentOperations, new Dictionary<string, VbdOperations>());
        }

        foreach (var vifRef in source.Get(XenApi.VM.VIFs))
        {
            var vif = await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken);
            var copy = vif.ToRecord();
            copy.Remove("uuid");
            var created = tx.Create(XenClasses.VIFSchema, copy);
            created.Set(XenApi.VIF.VM, clone.Ref);
            created.Set(XenApi.VIF.CurrentlyAttached, false);
            // A copy is a new machine on the network: it gets its own MAC unless the original's was set by hand.
            if (vif.Get(XenApi.VIF.MACAutogenerated) || string.IsNullOrEmpty(vif.Get(XenApi.VIF.MAC)))
            {
                created.Set(XenApi.VIF.MAC, Networking.MacAddress.NewRandom());
                created.Set(XenApi.VIF.MACAutogenerated, true);
            }
        }

        // The VM's vTPMs too, as xapi's clone copies them (a unique one's contents excepted).
        await VtpmRecords.CopyIntoAsync(database, tx, source, clone.Ref, cancellationToken);
        await database.CommitAsync(tx, cancellationToken);
        return clone.Ref;
    }

    private static void ValidateMemory(XenObject vm)
    {
        long smin = vm.Get(XenApi.VM.MemoryStaticMin), dmin = vm.Get(XenApi.VM.MemoryDynamicMin),
            dmax = vm.Get(XenApi.VM.MemoryDynamicMax), smax = vm.Get(XenApi.VM.MemoryStaticMax);
        if (!(smin <= dmin && dmin <= dmax && dmax <= smax) || smax <= 0)
        {
            // xapi's own constraint and error for memory settings.
            throw new XenApiException("MEMORY_CONSTRAINT_VIOLATION", "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max");
        }
    }

    private async Task<object?> SetMemoryAsync(string vmRef, long? staticMin, long staticMax, long dynamicMin, long dynamicMax, CancellationToken cancellationToken)
    {
        var check = await marks.VmRulesAsync(await GetVmAsync(vmRef, cancellationToken), VmOperations.ChangingMemoryLimits, cancellationToken);
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            if (check(objs[0]) is { } refused)
            {
                throw refused.ToException();
            }

            var v = objs[0].Clone();
            if (staticMin is { } min)
            {
                v.Set(XenApi.VM.MemoryStaticMin, min);
            }
            else
            {
                v.Set(XenApi.VM.MemoryStaticMin, Math.Min(v.Get(XenApi.VM.MemoryStaticMin), dynamicMin));
            }

            v.Set(XenApi.VM.MemoryStaticMax, staticMax);
            v.Set(XenApi.VM.MemoryDynamicMin, dynamicMin);
            v.Set(XenApi.VM.MemoryDynamicMax, dynamicMax);
            v.Set(XenApi.VM.MemoryTarget, dynamicMax);
            ValidateMemory(v);
            tx.Update(v);
        }, cancellationToken);
        return null;
    }

    /// <summary>The operation xapi checks (and marks) for a setter of <paramref name="field"/>, if any.</summary>
    private static VmOperations? OperationOf(string field) => field switch
    {
        "memory_static_max" or "memory_static_min" => VmOperations.ChangingStaticRange,
        "VCPUs_max" => VmOperations.ChangingVCPUs,
        "is_a_template" => VmOperations.MakeIntoTemplate,
        _ => null,
    };

    private async Task<object?> SetHaltedFieldAsync(string vmRef, string field, object? value, CancellationToken cancellationToken)
    {
        var vm = await GetVmAsync(vmRef, cancellationToken);
        var check = OperationOf(field) is { } op ? await marks.VmRulesAsync(vm, op, cancellationToken) : null;
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            if (field == "is_a_template")
            {
                // Making a VM a template is xapi's make_into_template; turning a template back into a VM is not checked.
                if (value is true && !v.Get(XenApi.VM.IsATemplate) && check!(objs[0]) is { } refused)
                {
                    throw refused.ToException();
                }
            }
            else if (check is not null)
            {
                if (check(objs[0]) is { } refused)
                {
                    throw refused.ToException();
                }
            }
            else
            {
                VmPowerStates.Require(v, VmPowerState.Halted);
            }

            v[field] = value;
            if (field.StartsWith("memory_", StringComparison.Ordinal))
            {
                // Setting one limit drags the others that would otherwise be out of order, as XenCenter users expect.
                var m = v.GetInt(field);
                if (field == "memory_static_max")
                {
                    v.Set(XenApi.VM.MemoryDynamicMax, Math.Min(v.Get(XenApi.VM.MemoryDynamicMax), m));
                    v.Set(XenApi.VM.MemoryDynamicMin, Math.Min(v.Get(XenApi.VM.MemoryDynamicMin), m));
                }

                ValidateMemory(v);
            }

            if (field == "VCPUs_max" && v.Get(XenApi.VM.VCPUsAtStartup) > v.Get(XenApi.VM.VCPUsMax))
            {
                v.Set(XenApi.VM.VCPUsAtStartup, v.Get(XenApi.VM.VCPUsMax));
            }

            if (field == "VCPUs_at_startup" && v.Get(XenApi.VM.VCPUsAtStartup) > v.Get(XenApi.VM.VCPUsMax))
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "VCPUs_at_startup", v.Get(XenApi.VM.VCPUsAtStartup).ToString(CultureInfo.InvariantCulture));
            }

            tx.Update(v);
        }, cancellationToken);
        return null;
    }
}
