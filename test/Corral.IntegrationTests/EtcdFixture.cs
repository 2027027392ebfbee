using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Corral.PoolDatabase.Etcd;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Corral.IntegrationTests;

/// <summary>A real etcd (Debian's etcd-server) on free loopback ports, in its own data directory, stopped by its pid.</summary>
public sealed class EtcdFixture : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dataDirectory;

    private EtcdFixture(Process process, string dataDirectory, string endpoint)
    {
        _process = process;
        _dataDirectory = dataDirectory;
        Endpoint = endpoint;
    }

    public string Endpoint { get; }

    public static async Task<EtcdFixture> StartAsync(params string[] extraArguments)
    {
        var client = FreePort();
        var peer = FreePort();
        var data = Directory.CreateTempSubdirectory("corral-etcd-").FullName;
        var info = new ProcessStartInfo("etcd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--name", "test", "--data-dir", data,
                     "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                     "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                     "--initial-cluster", $"test=http://127.0.0.1:{peer}",
                 })
        {
            info.ArgumentList.Add(a);
        }

        foreach (var a in extraArguments)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start etcd");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var fixture = new EtcdFixture(process, data, $"http://127.0.0.1:{client}");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, client);
                using var db = fixture.CreateDatabase();
                await db.GetRevisionAsync(CancellationToken.None);
                return fixture;
            }
            catch (Exception) when (!process.HasExited)
            {
                await Task.Delay(100);
            }
        }

        await fixture.DisposeAsync();
        throw new InvalidOperationException("etcd did not become ready");
    }

    public EtcdPoolDatabase CreateDatabase() =>
        new(Options.Create(new EtcdOptions { Endpoints = Endpoint }), NullLogger<EtcdPoolDatabase>.Instance, NullLoggerFactory.Instance);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_dataDirectory, recursive: true);
    }
}
