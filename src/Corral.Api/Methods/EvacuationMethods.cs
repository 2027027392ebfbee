using Corral.Api.Dispatch;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Maintenance mode's messages: <c>host.get_vms_which_prevent_evacuation</c> and <c>host.evacuate</c>. The evacuation
/// runs as an operation of the evacuated host (<c>host.evacuate</c>), persisted, so its agent resumes it after a
/// restart; each VM moves by a live migration of its own.
/// </summary>
public sealed class EvacuationMethods(IPoolDatabase database, EvacuationPlanner planner, HostOperationQueue operations, Placement placement) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("host.get_vms_which_prevent_evacuation", async (_, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct).ConfigureAwait(false);
            var plan = await planner.PlanAsync(host.Ref, ct).ConfigureAwait(false);
            return plan.Blockers.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList());
        }, ("self", FieldType.String));

        registry.Add("host.evacuate", async (ctx, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct).ConfigureAwait(false);
            if (!await placement.IsLiveAsync(host, ct).ConfigureAwait(false))
            {
                throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
            }

            // Nothing moves unless everything can: the first VM that cannot go says why, as xapi's evacuate does.
            var plan = await planner.PlanAsync(host.Ref, ct).ConfigureAwait(false);
            if (plan.Blockers.Count > 0)
            {
                throw new XenApiException(plan.Blockers.First().Value[0], [.. plan.Blockers.First().Value.Skip(1)]);
            }

            await operations.RunAsync(HostOperationKinds.HostEvacuate, host.Ref, host.Ref, new Dictionary<string, string>(), ctx, ct).ConfigureAwait(false);
            return null;
        }, ("host", FieldType.String));
    }

    private async Task<XenObject> GetHostAsync(string hostRef, CancellationToken cancellationToken) =>
        OpaqueRef.IsWellFormed(hostRef) ? await database.GetAsync(XenClasses.Host, hostRef, cancellationToken).ConfigureAwait(false)
        : throw XenApiException.HandleInvalid(XenClasses.Host, hostRef);
}
