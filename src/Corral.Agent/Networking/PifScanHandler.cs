using Corral.Agent.Operations;
using Corral.Api.Operations;

namespace Corral.Agent.Networking;

/// <summary><c>PIF.scan</c> on the host concerned: its network cards read again, a PIF introduced for each new one.</summary>
public sealed class PifScanHandler(HostNicMonitor monitor) : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.PifScan];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        await monitor.ScanAsync(cancellationToken);
        return null;
    }
}
