using Corral.PoolDatabase.Etcd.Tls;
using dotnet_etcd;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// A short-lived etcd client outside the pool database (membership changes between agent generations), connected as
/// the pool database is: through <see cref="EtcdEndpoints"/>, with this host's certificate when the endpoints are https.
/// </summary>
public sealed class EtcdConnection : IDisposable
{
    private readonly GrpcChannel _channel;

    public EtcdConnection(IReadOnlyList<string> endpoints, EtcdTlsFiles? tls)
    {
        _channel = new EtcdEndpoints(endpoints).CreateChannel(tls: tls);
        Client = new EtcdClient(_channel.CreateCallInvoker().Intercept(new DeadlineAsUnavailable()));
    }

    public EtcdClient Client { get; }

    public void Dispose()
    {
        Client.Dispose();
        _channel.Dispose();
    }
}
