using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging.Abstractions;

namespace Corral.IntegrationTests;

/// <summary>
/// One host's etcd member as the agent runs it (<see cref="LocalEtcdMember"/>, TLS with the host's certificate of its
/// pool's CA from <see cref="EtcdTlsFiles"/>), on free loopback ports, in a directory of its own. Stopped by its pid.
/// </summary>
internal sealed class TlsMember : IAsyncDisposable
{
    private TlsMember(string root, string name)
    {
        Root = Path.Combine(root, name);
        Options = new EtcdMemberOptions
        {
            Enabled = true,
            Name = name,
            DataDirectory = Path.Combine(Root, "etcd"),
            PeerUrl = $"https://127.0.0.1:{FreePort()}",
            ClientUrl = $"https://127.0.0.1:{FreePort()}",
        };
        Tls = new EtcdTlsFiles(Path.Combine(Root, "state", EtcdTlsFiles.DirectoryName));
        Member = new LocalEtcdMember(Options, NullLogger.Instance, Tls);
    }

    public string Root { get; }

    public EtcdMemberOptions Options { get; }

    public EtcdTlsFiles Tls { get; }

    public LocalEtcdMember Member { get; }

    public string StateDirectory => Path.Combine(Root, "state");

    /// <summary>Ports and files for a host; nothing started.</summary>
    public static TlsMember Prepare(string root, string name) => new(root, name);

    /// <summary>A host on its own: a new pool's CA, and a one-member cluster serving with its certificate.</summary>
    public static async Task<TlsMember> StartNewPoolAsync(string root, string name)
    {
        // A port picked free can be taken by a test running alongside before etcd binds it: then new ports.
        for (var attempt = 1; ; attempt++)
        {
            var host = new TlsMember(root, attempt == 1 ? name : $"{name}-{attempt}");
            host.Tls.CreatePool(host.Options.Name, PoolCertificateAuthority.NamesFor(host.Options.Name, host.Options.PeerUrl, host.Options.ClientUrl),
                TimeProvider.System);
            await host.Member.StartAsync(EtcdStartMode.NewCluster, "", CancellationToken.None);
            try
            {
                await host.Member.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
                return host;
            }
            catch (InvalidOperationException) when (attempt < 3 && host.Member.LastLogLines(20).Contains("address already in use", StringComparison.Ordinal))
            {
                await host.DisposeAsync();
            }
        }
    }

    /// <summary>This host's key, and its certificate signed by <paramref name="ca"/> from a request, as a master answers a join.</summary>
    public PoolTlsMaterial CertificateFrom(PoolCertificateAuthority ca)
    {
        var (key, request) = PoolCertificateAuthority.CreateSigningRequest(Options.Name);
        using var certificate = ca.Issue(request, Options.Name, PoolCertificateAuthority.NamesFor(Options.Name, Options.PeerUrl), TimeProvider.System);
        return new PoolTlsMaterial(ca.CertificatePem, ca.KeyPem, certificate.ExportCertificatePem(), key);
    }

    /// <summary>The pool database through this host's member, with this host's certificate, as its agent connects.</summary>
    public EtcdPoolDatabase Database() =>
        new(Microsoft.Extensions.Options.Options.Create(new EtcdOptions
        {
            Endpoints = Options.ClientUrl,
            CertificateDirectory = Tls.Directory,
            RequestTimeout = TimeSpan.FromSeconds(5),
        }), NullLogger<EtcdPoolDatabase>.Instance, NullLoggerFactory.Instance);

    /// <summary>Debian's etcdctl (a client Corral did not write) against this member's client URL; its exit code and what it said.</summary>
    public Task<(int Code, string Output)> EtcdctlAsync(params string[] arguments) => Etcdctl(Options.ClientUrl, arguments);

    public static async Task<(int Code, string Output)> Etcdctl(string endpoint, params string[] arguments)
    {
        var info = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["ETCDCTL_API"] = "3";
        foreach (var argument in new[] { $"--endpoints={endpoint}", "--dial-timeout=3s", "--command-timeout=5s" }.Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, ((await output) + (await error)).Trim());
    }

    /// <summary>etcdctl's flags for a client presenting <paramref name="files"/>' certificate and trusting its CA.</summary>
    public static string[] With(EtcdTlsFiles files) =>
        [$"--cacert={files.CaCertificateFile}", $"--cert={files.CertificateFile}", $"--key={files.KeyFile}"];

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync() => await Member.StopAsync(CancellationToken.None);
}
