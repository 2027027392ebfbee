using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The VTPM messages, as xapi's <c>Xapi_vtpm</c>: <c>create</c> (a halted VM, one VTPM per VM, the pool not restricted),
/// <c>destroy</c> (a halted or suspended VM; its contents go with it), and the contents, <c>get_contents</c> and
/// <c>set_contents</c>, which xapi hides from its documentation and keeps for the local superuser (root), whatever
/// role another session holds: the TPM's state is the VM's secrets.
/// </summary>
public sealed class VtpmMethods(IPoolDatabase database, OperationMarks marks, SessionService sessions) : IApiMethodProvider
{
    private static readonly SemaphoreSlim CreateLock = new(1, 1);

    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var vtpmRef = FieldType.Ref(XenApi.VTPM.ClassName);
        registry.Add("VTPM.create", (ctx, a, ct) => CreateAsync(ctx, (string)a[0]!, (bool)a[1]!, ct), ("vM", FieldType.Ref(XenClasses.VM)), ("is_unique", FieldType.Bool));
        registry.Add("VTPM.destroy", (_, a, ct) => DestroyAsync((string)a[0]!, ct), ("self", vtpmRef));
        registry.Add("VTPM.get_contents", async (ctx, a, ct) =>
        {
            await RequireLocalSuperuserAsync(ctx, ct);
            var vtpm = await database.GetArgumentAsync(XenApi.VTPM.ClassName, (string)a[0]!, ct);
            return await VtpmRecords.ContentsAsync(database, vtpm.Ref, ct);
        }, ("self", vtpmRef));
        registry.Add("VTPM.set_contents", async (ctx, a, ct) =>
        {
            await RequireLocalSuperuserAsync(ctx, ct);
            var vtpm = await database.GetArgumentAsync(XenApi.VTPM.ClassName, (string)a[0]!, ct);
            var contents = (string)a[1]!;
            if (!IsBase64(contents))
            {
                // xapi checks the contents are base64 and says so as an internal error.
                throw new XenApiException(ErrorCodes.InternalError, "VTPM contents are not base64-encoded");
            }

            await VtpmRecords.SetContentsAsync(database, vtpm.Ref, contents, ct);
            return null;
        }, ("self", vtpmRef), ("contents", FieldType.String));
    }

    public static bool IsBase64(string contents) => contents.Length % 4 == 0 && Convert.TryFromBase64String(contents, new byte[contents.Length / 4 * 3], out _);

    private async Task<object?> CreateAsync(CallContext context, string vmRef, bool isUnique, CancellationToken cancellationToken)
    {
        if ((await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Any(p => p.Get(XenApi.Pool.Restrictions).GetValueOrDefault("restrict_vtpm") == "true"))
        {
            throw new XenApiException(ErrorCodes.FeatureRestricted, "restrict_vtpm");
        }

        // xapi runs it as the VM's create_vtpm operation: the VM halted, and no VTPM yet (VTPM_MAX_AMOUNT_REACHED).
        await using var mark = await marks.MarkVmAsync(context, vmRef, VmOperations.CreateVtpm, cancellationToken);
        await CreateLock.WaitAsync(cancellationToken);
        try
        {
            var vm = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
            if (vm.Get(XenApi.VM.VTPMs) is { Count: > 0 } existing)
            {
                throw new XenApiException(ErrorCodes.VtpmMaxAmountReached, existing.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            VmPowerStates.Require(vm, VmPowerState.Halted);
            var tx = new PoolTransaction();
            var vtpm = VtpmRecords.Create(tx, vm.Ref, isUnique);
            await database.CommitAsync(tx, cancellationToken);
            return vtpm.Ref;
        }
        finally
        {
            CreateLock.Release();
        }
    }

    private async Task<object?> DestroyAsync(string vtpmRef, CancellationToken cancellationToken)
    {
        var vtpm = await database.GetArgumentAsync(XenApi.VTPM.ClassName, vtpmRef, cancellationToken);
        if (await database.TryGetAsync(XenClasses.VM, vtpm.Get(XenApi.VTPM.VM), cancellationToken) is { } vm)
        {
            VmPowerStates.Require(vm, VmPowerState.Halted, VmPowerState.Suspended);
        }

        var tx = new PoolTransaction();
        await VtpmRecords.DeleteAsync(database, tx, vtpm, cancellationToken);
        await database.CommitAsync(tx, cancellationToken);
        return null;
    }

    /// <summary>xapi's <c>_R_LOCAL_ROOT_ONLY</c>: no role holds the permission, so only root's sessions (and the hosts') pass.</summary>
    private async Task RequireLocalSuperuserAsync(CallContext context, CancellationToken cancellationToken)
    {
        if (!(await sessions.ValidateAsync(context.SessionRef, cancellationToken)).Unrestricted)
        {
            throw new XenApiException(ErrorCodes.RbacPermissionDenied, context.MethodName, "No permission in user session. (Roles with this permission: )");
        }
    }
}
