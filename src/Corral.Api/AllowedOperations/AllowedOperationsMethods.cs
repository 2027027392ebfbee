using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Logging;

namespace Corral.Api.AllowedOperations;

/// <summary><c>VM.assert_operation_valid</c> and <c>VM.update_allowed_operations</c>, on the same rules as the lists.</summary>
public sealed class AllowedOperationsMethods(IPoolDatabase database, OperationMarks marks, SrDrivers drivers, ILogger<AllowedOperationsMethods> logger)
    : IApiMethodProvider
{
    private ApiRegistry? _registry;

    public void Register(ApiRegistry registry)
    {
        _registry = registry;
        registry.Implement("VM.assert_operation_valid", async (_, a, ct) =>
        {
            var vm = await database.GetArgumentAsync(XenClasses.VM, (string)a[0]!, ct);
            await marks.AssertVmAsync(vm, XenEnum.FromWire<VmOperations>(XenEnumTypes.VmOperations, (string)a[1]!), ct);
            return null;
        });
        registry.Implement("VM.update_allowed_operations", async (_, a, ct) =>
        {
            await UpdateAsync(await database.GetArgumentAsync(XenClasses.VM, (string)a[0]!, ct), ct);
            return null;
        });
    }

    /// <summary>
    /// Computes now, as xapi does, the allowed operations of every disk of the VM and its VDI, every VIF, then the VM
    /// (the master keeps them up to date anyway; clients call this after changing what they depend on). They are written
    /// as computed from the revision current before the read, so a list the master computed later is kept.
    /// </summary>
    private async Task UpdateAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var source = await database.GetRevisionAsync(cancellationToken);
        var index = await PoolObjectIndex.LoadAsync(database, cancellationToken);
        var facts = new OperationFacts(index, OperationFactsLoader.Features(drivers));
        var calculator = new AllowedOperationsCalculator(ImplementedOperations.From(_registry!));
        var vbds = index.Referring(XenClasses.VBD, "VM", vm.Ref).ToList();
        var objects = vbds.SelectMany(vbd => new[] { (XenClasses.VBD, vbd.Ref), (XenClasses.VDI, vbd.Get(XenApi.VBD.VDI)) })
            .Concat(index.Referring(XenClasses.VIF, "VM", vm.Ref).Select(vif => (XenClasses.VIF, vif.Ref)))
            .Append((XenClasses.VM, vm.Ref))
            .Where(o => index.Find(o.Item1, o.Item2) is not null)
            .Distinct();
        foreach (var (className, reference) in objects)
        {
            try
            {
                var computed = calculator.Compute(facts, index.Find(className, reference)!)!;
                await database.SetAllowedOperationsAsync(className, reference, computed, source, cancellationToken);
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid && className != XenClasses.VM)
            {
                logger.LogDebug(AllowedOperationsEvents.Vanished, "{Class} {Ref} was removed meanwhile: no list to update", className, reference);
            }
        }
    }
}
