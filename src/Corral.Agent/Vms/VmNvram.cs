using Corral.Agent.Hosting;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// A UEFI VM's firmware and variable store, as XenServer keeps them: <c>HVM_boot_params:firmware=uefi</c> boots OVMF,
/// and the store lives with the VM in the pool database (<c>VM.NVRAM</c>, key <c>EFI-variables</c>, base64), so that a
/// VM on shared storage keeps its boot entries and settings whichever host it starts on next. The store is saved when
/// the VM stops, and while it runs every 30 seconds if the guest changed it (a host that dies loses at most that).
/// Secure Boot (<c>platform:secureboot=true</c>; VM.start makes <c>auto</c> true, as xapi's does when the pool has
/// certificates, and Corral's are always there: Microsoft's, enrolled in Debian's OVMF store) starts a first boot from
/// the store with the keys enrolled and Secure Boot on. A store the VM already has is kept as it is: to turn Secure
/// Boot on or off for a VM that booted before, remove its <c>NVRAM:EFI-variables</c> (the firmware makes its boot
/// entries again).
/// </summary>
public sealed class VmNvram(VmSupervisor supervisor, IPoolDatabase database, HostIdentity identity, ILogger<VmNvram> logger)
    : RunningVmStateSaver(supervisor, database, identity, logger)
{
    public const string VariablesKey = "EFI-variables";
    public const string SecureBootKey = "secureboot";
    private static readonly EventId Saved = new(1540, "VmNvramSaved");

    /// <summary>The VM's UEFI firmware and store; null for a BIOS VM.</summary>
    /// <exception cref="XenApiException">The VM's store is not base64.</exception>
    public static UefiSpec? SpecOf(XenObject vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (vm.Get(XenApi.VM.HVMBootParams).GetValueOrDefault("firmware") != "uefi")
        {
            return null;
        }

        var secureBoot = vm.Get(XenApi.VM.Platform).GetValueOrDefault(SecureBootKey) == "true";
        if (vm.Get(XenApi.VM.NVRAM).GetValueOrDefault(VariablesKey) is not { Length: > 0 } stored)
        {
            return new UefiSpec(null, secureBoot);
        }

        try
        {
            return new UefiSpec(Convert.FromBase64String(stored), secureBoot);
        }
        catch (FormatException)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, $"NVRAM:{VariablesKey}", "not base64");
        }
    }

    /// <summary>The VM's NVRAM map with its variable store replaced.</summary>
    public static Dictionary<string, string> With(IReadOnlyDictionary<string, string> nvram, byte[] variables) =>
        new(nvram, StringComparer.Ordinal) { [VariablesKey] = Convert.ToBase64String(variables) };

    protected override string What => "UEFI variables";

    protected override EventId SavedEvent => Saved;

    protected override bool Has(IVmProcess process) => process.Spec.Uefi is not null;

    protected override Task<byte[]?> ReadAsync(IVmProcess process, CancellationToken cancellationToken) => process.ReadNvramAsync(cancellationToken);

    protected override async Task<bool> WriteAsync(XenObject vm, byte[] state, CancellationToken cancellationToken)
    {
        if (vm.Get(XenApi.VM.NVRAM).GetValueOrDefault(VariablesKey) == Convert.ToBase64String(state))
        {
            return false;
        }

        await Database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var changed = objs[0].Clone();
            changed.Set(XenApi.VM.NVRAM, With(changed.Get(XenApi.VM.NVRAM), state));
            tx.Update(changed);
        }, cancellationToken);
        return true;
    }
}
