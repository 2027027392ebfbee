using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// A VM's virtual TPM on the host that runs it, as XenServer keeps it: the TPM's state lives with the VM in the pool
/// database (its VTPM's contents, base64), so that the VM finds its keys and sealed secrets whichever host it starts on
/// next. The host restores the state when the VM starts, and writes it back when the VM stops and, while it runs, every
/// 30 seconds if the guest changed it (as <see cref="VmNvram"/> does the UEFI variables). A live migration carries the
/// state in QEMU's stream. As xapi, a VM whose <c>platform:vtpm</c> is <c>true</c> and has no VTPM gets one at start.
/// </summary>
public sealed class VmVtpm(VmSupervisor supervisor, IPoolDatabase database, HostIdentity identity, ILogger<VmVtpm> logger)
    : RunningVmStateSaver(supervisor, database, identity, logger)
{
    private static readonly EventId Saved = new(1545, "VmVtpmSaved");
    private static readonly EventId Created = new(1546, "VmVtpmCreated");

    /// <summary>
    /// xapi's start: a VM that asks for a vTPM in its platform flags and has none gets a new one (not unique), once.
    /// Returns the VM as it is now.
    /// </summary>
    public static async Task<XenObject> EnsureForPlatformAsync(IPoolDatabase database, XenObject vm, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(vm);
        if (vm.Get(XenApi.VM.Platform).GetValueOrDefault("vtpm") != "true" || vm.Get(XenApi.VM.VTPMs).Count > 0)
        {
            return vm;
        }

        var tx = new PoolTransaction();
        VtpmRecords.Create(tx, vm.Ref, isUnique: false);
        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(Created, "VM {Vm} asks for a vTPM (platform:vtpm=true) and had none: made one", vm.Get(XenApi.VM.NameLabel));
        return await database.GetAsync(XenClasses.VM, vm.Ref, cancellationToken);
    }

    /// <summary>The VM's vTPM with its saved state (none yet: a new TPM); null for a VM without a VTPM.</summary>
    /// <exception cref="XenApiException">The VM has more than one VTPM, or its contents are not base64.</exception>
    public static async Task<TpmSpec?> SpecOfAsync(IPoolDatabase database, XenObject vm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var vtpms = vm.Get(XenApi.VM.VTPMs);
        if (vtpms.Count == 0)
        {
            return null;
        }

        if (vtpms.Count > 1)
        {
            throw new XenApiException(ErrorCodes.VtpmMaxAmountReached, vtpms.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var contents = await VtpmRecords.ContentsAsync(database, vtpms[0], cancellationToken);
        try
        {
            return new TpmSpec(contents.Length == 0 ? null : Convert.FromBase64String(contents));
        }
        catch (FormatException)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "VTPM.contents", "not base64");
        }
    }

    /// <summary>
    /// Adds the VTPM's new contents to <paramref name="tx"/> (the record of the VM's end, so that they are written only
    /// while the VM is still this host's). Nothing for a VM without a VTPM.
    /// </summary>
    public static async Task AddFinalStateAsync(IPoolDatabase database, PoolTransaction tx, XenObject vm, byte[] state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(vm);
        if (vm.Get(XenApi.VM.VTPMs) is not [var vtpmRef, ..] || await VtpmRecords.SecretAsync(database, vtpmRef, cancellationToken) is not { } secret)
        {
            return;
        }

        var encoded = Convert.ToBase64String(state);
        if (secret.Get(XenApi.Secret.Value) != encoded)
        {
            var changed = secret.Clone();
            changed.Set(XenApi.Secret.Value, encoded);
            tx.Update(changed);
        }
    }

    protected override string What => "vTPM state";

    protected override EventId SavedEvent => Saved;

    protected override bool Has(IVmProcess process) => process.Spec.Tpm is not null;

    protected override Task<byte[]?> ReadAsync(IVmProcess process, CancellationToken cancellationToken) => process.ReadTpmStateAsync(cancellationToken);

    protected override async Task<bool> WriteAsync(XenObject vm, byte[] state, CancellationToken cancellationToken)
    {
        if (vm.Get(XenApi.VM.VTPMs) is not [var vtpmRef, ..])
        {
            return false;
        }

        var encoded = Convert.ToBase64String(state);
        if (await VtpmRecords.ContentsAsync(Database, vtpmRef, cancellationToken) == encoded)
        {
            return false;
        }

        await VtpmRecords.SetContentsAsync(Database, vtpmRef, encoded, cancellationToken);
        return true;
    }
}
