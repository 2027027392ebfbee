using Corral.Api.Dispatch;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>network messages. A network is a Linux bridge of the same name on every host.</summary>
public sealed class NetworkMethods(IPoolDatabase database) : IApiMethodProvider
{
    private static readonly FieldType Record = FieldType.Map(FieldType.String, new AnyType());

    public void Register(ApiRegistry registry)
    {
        registry.Add("network.create", async (_, a, ct) =>
        {
            var record = (Dictionary<string, object?>)a[0]!;
            var existing = await database.GetAllAsync(XenClasses.Network, ct);
            var bridge = record.GetValueOrDefault("bridge")?.ToString();
            if (string.IsNullOrEmpty(bridge))
            {
                var taken = existing.Select(n => n.Get(XenApi.Network.Bridge)).ToHashSet();
                bridge = Enumerable.Range(0, 1000).Select(i => $"corral{i}").First(b => !taken.Contains(b));
            }

            BridgeNetworking.ValidateName(bridge);
            var tx = new PoolTransaction();
            var network = tx.Create(XenClasses.NetworkSchema);
            network.Set(XenApi.Network.NameLabel, ConstructorRecord.Value(record, network.Schema, XenApi.Network.NameLabel, ""));
            network.Set(XenApi.Network.NameDescription, ConstructorRecord.Value(record, network.Schema, XenApi.Network.NameDescription, ""));
            network.Set(XenApi.Network.MTU, ConstructorRecord.Value(record, network.Schema, XenApi.Network.MTU, 1500L));
            network.Set(XenApi.Network.OtherConfig, ConstructorRecord.Value(record, network.Schema, XenApi.Network.OtherConfig, new Dictionary<string, string>()));
            network.Set(XenApi.Network.Bridge, bridge);
            await database.CommitAsync(tx, ct);
            return network.Ref;
        }, ("args", Record));
        registry.Add("network.destroy", async (_, a, ct) =>
        {
            var network = await database.GetAsync(XenClasses.Network, (string)a[0]!, ct);
            if (network.Get(XenApi.Network.VIFs).Count > 0)
            {
                throw new XenApiException("NETWORK_CONTAINS_VIF", [.. network.Get(XenApi.Network.VIFs)]);
            }

            var tx = new PoolTransaction();
            tx.Delete(network);
            await database.CommitAsync(tx, ct);
            return null;
        }, ("self", FieldType.String));
    }
}
