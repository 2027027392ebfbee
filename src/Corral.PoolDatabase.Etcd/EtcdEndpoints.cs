using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// The etcd client endpoints this host uses, in order of preference, and the gRPC channel that follows them. The
/// channel picks the first endpoint that accepts a connection and stays on it until that connection fails, then moves
/// to the next (gRPC's pick_first): the configured endpoints (this host's own member first) are preferred, and the
/// other members' client URLs, learned from the cluster's member list (<see cref="Update"/>), are where it goes when
/// the local member dies. Without them a host whose own member died lost its lease and, with HA on, fenced its VMs.
/// </summary>
public sealed class EtcdEndpoints
{
    private readonly Lock _lock = new();
    private IReadOnlyList<Uri> _current;
    private IReadOnlyList<Uri>? _only;

    public EtcdEndpoints(IReadOnlyList<string> configured)
    {
        Configured = configured.Select(e => e.Trim()).Where(e => e.Length > 0).ToList();
        if (Configured.Count == 0)
        {
            throw new ArgumentException("no etcd endpoint configured", nameof(configured));
        }

        _current = Configured.Select(ToUri).ToList();
    }

    public IReadOnlyList<string> Configured { get; }

    public IReadOnlyList<Uri> Current
    {
        get
        {
            lock (_lock)
            {
                return _only ?? _current;
            }
        }
    }

    /// <summary>
    /// Moves the channel back to the most preferred endpoint (this host's own member, serving again after a restart):
    /// pick_first stays on the member it moved to while the local one was down, and would go on depending on that
    /// other host (its death would then cost this host its lease). The channel is handed the preferred endpoint alone,
    /// which makes it leave the other, then the whole list again, in which the preferred one comes first.
    /// </summary>
    public void ReturnToPreferred()
    {
        lock (_lock)
        {
            _only = [_current[0]];
        }

        Changed?.Invoke();
        lock (_lock)
        {
            _only = null;
        }

        Changed?.Invoke();
    }

    /// <summary>Raised (outside any lock) when <see cref="Current"/> changes.</summary>
    public event Action? Changed;

    /// <summary>Takes the order computed from the member list; true if it differs from the current one.</summary>
    public bool Update(IReadOnlyList<string> endpoints)
    {
        var next = endpoints.Select(ToUri).ToList();
        lock (_lock)
        {
            if (next.Count == 0 || next.SequenceEqual(_current))
            {
                return false;
            }

            _current = next;
        }

        Changed?.Invoke();
        return true;
    }

    /// <summary>
    /// The endpoints in order of preference: the configured loopback endpoints (this host's own member) first, then the
    /// configured others still in the cluster, then every other voting member's client URLs. Learners are left out
    /// (they answer neither writes nor linearizable reads); so is this host's own member under its advertised URL,
    /// which is the loopback endpoint again. A configured endpoint the member list no longer names (an ejected
    /// member) goes; if the list names nothing usable, the configured endpoints stay.
    /// </summary>
    public static IReadOnlyList<string> Order(IReadOnlyList<string> configured, IEnumerable<EtcdMemberInfo> members, string? ownClientUrl)
    {
        var voters = members.Where(m => !m.IsLearner).SelectMany(m => m.ClientUrls).Select(Normalize).ToList();
        var own = ownClientUrl is null ? null : Normalize(ownClientUrl);
        var ordered = new List<string>();
        void Add(string url)
        {
            url = Normalize(url);
            if (!ordered.Contains(url, StringComparer.OrdinalIgnoreCase) && !string.Equals(url, own, StringComparison.OrdinalIgnoreCase))
            {
                ordered.Add(url);
            }
        }

        foreach (var url in configured.Where(IsLoopback).Select(Normalize))
        {
            if (!ordered.Contains(url, StringComparer.OrdinalIgnoreCase))
            {
                ordered.Add(url);
            }
        }

        foreach (var url in configured.Where(u => !IsLoopback(u) && voters.Contains(Normalize(u), StringComparer.OrdinalIgnoreCase)))
        {
            Add(url);
        }

        foreach (var url in voters)
        {
            Add(url);
        }

        return ordered.Count > 0 ? ordered : configured.Select(Normalize).ToList();
    }

    /// <summary>
    /// A channel over these endpoints: pick_first in their order, following <see cref="Changed"/>; dotnet-etcd's retry
    /// of unavailable calls; a short connect timeout, so a member whose host is gone (its address unanswered) holds up
    /// the move to the next one by a second at most. With https endpoints and <paramref name="tls"/>, the host's
    /// certificate is presented and the members' checked against the pool's CA.
    /// </summary>
    public GrpcChannel CreateChannel(Action<GrpcChannelOptions>? configure = null, EtcdTlsFiles? tls = null)
    {
        var secure = Configured[0].StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new EndpointResolverFactory(this));
        var options = new GrpcChannelOptions
        {
            ServiceConfig = new ServiceConfig
            {
                LoadBalancingConfigs = { new PickFirstConfig() },
                MethodConfigs =
                {
                    new MethodConfig
                    {
                        Names = { MethodName.Default },
                        RetryPolicy = new RetryPolicy
                        {
                            MaxAttempts = 5,
                            InitialBackoff = TimeSpan.FromSeconds(1),
                            MaxBackoff = TimeSpan.FromSeconds(5),
                            BackoffMultiplier = 1.5,
                            RetryableStatusCodes = { StatusCode.Unavailable },
                        },
                    },
                },
                RetryThrottling = new RetryThrottlingPolicy { MaxTokens = 10, TokenRatio = 0.1 },
            },
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(1),
                // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time) and pings without a stream.
                KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                EnableMultipleHttp2Connections = true,
                SslOptions = secure && tls is not null ? tls.ClientOptions() : new System.Net.Security.SslClientAuthenticationOptions(),
            },
            DisposeHttpClient = true,
            ThrowOperationCanceledOnCancellation = true,
            Credentials = secure ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
            ServiceProvider = services.BuildServiceProvider(),
        };
        configure?.Invoke(options);
        return GrpcChannel.ForAddress($"{EndpointResolverFactory.Scheme}:///pool", options);
    }

    private static bool IsLoopback(string url) => Uri.TryCreate(Normalize(url), UriKind.Absolute, out var uri) && uri.IsLoopback;

    private static string Normalize(string url)
    {
        url = url.Trim().TrimEnd('/');
        return url.Contains("://", StringComparison.Ordinal) ? url : "http://" + url;
    }

    private static Uri ToUri(string url)
    {
        var uri = new Uri(Normalize(url));
        return uri.IsDefaultPort || uri.Port < 0 ? new UriBuilder(uri) { Port = 2379 }.Uri : uri;
    }

    private sealed class EndpointResolverFactory(EtcdEndpoints endpoints) : ResolverFactory
    {
        public const string Scheme = "corral-etcd";

        public override string Name => Scheme;

        public override Resolver Create(ResolverOptions options) => new EndpointResolver(endpoints);
    }

    /// <summary>Hands the channel the current endpoints, and again whenever they change.</summary>
    private sealed class EndpointResolver(EtcdEndpoints endpoints) : Resolver
    {
        private Action<ResolverResult>? _listener;

        public override void Start(Action<ResolverResult> listener)
        {
            _listener = listener;
            endpoints.Changed += Publish;
            Publish();
        }

        private void Publish() =>
            _listener?.Invoke(ResolverResult.ForResult(endpoints.Current.Select(u => new BalancerAddress(u.Host, u.Port)).ToList()));

        protected override void Dispose(bool disposing)
        {
            endpoints.Changed -= Publish;
            base.Dispose(disposing);
        }
    }
}
