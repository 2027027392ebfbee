using System.Globalization;
using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Maintenance mode's messages: <c>host.get_vms_which_prevent_evacuation</c>, <c>host.evacuate</c> and, on the way
/// out, <c>host.restore_evacuated_vms</c>. The evacuation
/// runs as an operation of the evacuated host (<c>host.evacuate</c>), persisted, so its agent resumes it after a
/// restart; each VM moves by a live migration of its own.
/// </summary>
public sealed class EvacuationMethods(IPoolDatabase database, EvacuationPlanner planner, HostOperationQueue operations, Placement placement, OperationMarks marks)
    : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("host.get_vms_which_prevent_evacuation", async (_, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct);
            var plan = await planner.PlanAsync(host.Ref, ct);
            return plan.Blockers.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList());
        }, ("self", FieldType.String));

        // xapi's older form of the same question: one error for the host, its parameter every VM's reason
        // ("CODE,param,..."), joined with '|'.
        registry.Implement("host.assert_can_evacuate", async (_, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct);
            var plan = await planner.PlanAsync(host.Ref, ct);
            if (plan.Blockers.Count > 0)
            {
                throw new XenApiException(ErrorCodes.CannotEvacuateHost, CannotEvacuateReasons(plan));
            }

            return null;
        });

        registry.Add("host.evacuate", async (ctx, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct);
            if (!await placement.IsLiveAsync(host, ct))
            {
                throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
            }

            // network: the migrations' network. Corral's migrations travel between the hosts' management addresses.
            if (!OpaqueRef.IsNull((string)a[1]!))
            {
                throw new XenApiException(ErrorCodes.ValueNotSupported, "network", (string)a[1]!,
                    "live migrations use the hosts' management network; leave network as OpaqueRef:NULL");
            }

            var batch = (long)a[2]!;
            if (batch < 0)
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "evacuate_batch_size", batch.ToString(CultureInfo.InvariantCulture));
            }

            // Nothing moves unless everything can: the first VM that cannot go says why, as xapi's evacuate does.
            var plan = await planner.PlanAsync(host.Ref, ct);
            if (plan.Blockers.Count > 0)
            {
                throw new XenApiException(plan.Blockers.First().Value[0], [.. plan.Blockers.First().Value.Skip(1)]);
            }

            // The evacuation shows in the host's current_operations (XenCenter's maintenance-mode icon) until the
            // host's worker ends it; a second one, or one beside a reboot or shutdown, is refused as xapi does.
            await using var mark = await marks.MarkHostAsync(ctx, host.Ref, HostAllowedOperations.Evacuate, ct);

            // A new maintenance period: the list of VMs to bring back afterwards starts empty.
            await EvacuatedVms.ChangeAsync(database, host.Ref, _ => [], ct);
            var arguments = new Dictionary<string, string>();
            if (batch > 0)
            {
                arguments[BatchSizeArgument] = batch.ToString(CultureInfo.InvariantCulture);
            }

            await operations.RunAsync(HostOperationKinds.HostEvacuate, host.Ref, host.Ref, arguments, ctx, ct, mark);
            return null;
        }, ("host", FieldType.String), ("network", FieldType.String), ("evacuate_batch_size", FieldType.Int));

        // Corral's addition, what XenCenter does on leaving maintenance mode: the VMs the last evacuation moved (still
        // running elsewhere) come back to the host, each by a live migration, as a persisted operation of the host.
        registry.Add("host.restore_evacuated_vms", async (ctx, a, ct) =>
        {
            var host = await GetHostAsync((string)a[0]!, ct);
            if (!await placement.IsLiveAsync(host, ct))
            {
                throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
            }

            if (!host.Get(XenApi.Host.Enabled))
            {
                throw new XenApiException(ErrorCodes.HostDisabled, host.Ref);
            }

            await operations.RunAsync(HostOperationKinds.HostRestoreEvacuatedVms, host.Ref, host.Ref, new Dictionary<string, string>(), ctx, ct);
            return null;
        }, ("host", FieldType.String));
    }

    /// <summary>CANNOT_EVACUATE_HOST's one parameter: each blocking VM's error as "CODE,param,...", joined with '|'.</summary>
    public static string CannotEvacuateReasons(EvacuationPlan plan) =>
        string.Join('|', plan.Blockers.Values.Select(error => string.Join(',', error)));

    /// <summary>The host operation's argument for <c>evacuate_batch_size</c>: how many VMs move at once.</summary>
    public const string BatchSizeArgument = "batch_size";

    private Task<XenObject> GetHostAsync(string hostRef, CancellationToken cancellationToken) =>
        database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
}
