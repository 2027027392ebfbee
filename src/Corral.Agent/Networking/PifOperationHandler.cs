using Corral.Agent.Operations;
using Corral.Api.Operations;

namespace Corral.Agent.Networking;

/// <summary>
/// The PIF operations that touch the host concerned: <c>PIF.scan</c> (its cards read again, a PIF introduced for each
/// new one), <c>PIF.introduce</c> (a PIF for one named link), <c>PIF.plug</c> and <c>PIF.unplug</c> (the card's link
/// brought up or down), <c>PIF.reconfigure_ip</c> (its IPv4 configuration). The API checked what xapi checks before.
/// </summary>
public sealed class PifOperationHandler(HostNicMonitor monitor) : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } =
        [HostOperationKinds.PifScan, HostOperationKinds.PifIntroduce, HostOperationKinds.PifPlug, HostOperationKinds.PifUnplug, HostOperationKinds.PifReconfigureIp];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        switch (operation.Kind)
        {
            case HostOperationKinds.PifIntroduce:
                return await monitor.IntroduceAsync(operation.Argument("device"), operation.Argument("mac"), operation.Argument("managed") != "false",
                    cancellationToken);
            case HostOperationKinds.PifReconfigureIp:
                await monitor.ReconfigureIpAsync(operation.Target, operation.Argument("device"), PifAddressSettings.FromArguments(n => operation.Argument(n)),
                    cancellationToken);
                return null;
            case HostOperationKinds.PifPlug:
            case HostOperationKinds.PifUnplug:
                await monitor.SetLinkAsync(operation.Argument("device"), operation.Kind == HostOperationKinds.PifPlug, cancellationToken);
                return null;
            default:
                await monitor.ScanAsync(cancellationToken);
                return null;
        }
    }
}
