using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Corral.Api.Client;
using Corral.Api.Client.Tls;
using Corral.Cli.Api;

namespace Corral.Cli.Tests;

/// <summary>
/// xe's HTTPS as it runs: a real TLS handshake with a server presenting a self-signed certificate, through the handler
/// xe's connections use, trusted on first use and refused once it changes.
/// </summary>
public sealed class XeTlsTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-xe-tls-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>A one-answer JSON-RPC server over TLS (or plain HTTP with no certificate), stopped by disposing it.</summary>
    private sealed class TinyServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();

        public TinyServer()
        {
            _listener.Start();
            _ = ServeAsync();
        }

        public X509Certificate2? Certificate { get; set; }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                _ = AnswerAsync(client);
            }
        }

        private async Task AnswerAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    Stream stream = client.GetStream();
                    if (Certificate is { } certificate)
                    {
                        var tls = new SslStream(stream);
                        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, _stop.Token);
                        stream = tls;
                    }

                    var buffer = new byte[8192];
                    if (Certificate is null)
                    {
                        // A plain HTTP server, as Kestrel answers bytes that are no HTTP request (a TLS hello).
                        _ = await stream.ReadAsync(buffer, _stop.Token);
                        await stream.WriteAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), _stop.Token);
                        return;
                    }

                    var request = new StringBuilder();
                    while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await stream.ReadAsync(buffer, _stop.Token);
                        if (n == 0)
                        {
                            return;
                        }

                        request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    var body = """{"jsonrpc":"2.0","result":"OpaqueRef:session","id":1}""";
                    var answer = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(answer), _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                }
                catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
                {
                    // The client refused the certificate, or hung up: nothing more to answer.
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _stop.Dispose();
        }
    }

    private JsonRpcXenApiClient XeClient(int port, StringWriter notes)
    {
        var trust = new ServerCertificateTrust(KnownServers.ForUser(name => name == "HOME" ? _home : null), notes);
        var endpoint = JsonRpcXenApiClient.EndpointFor("127.0.0.1", port, secure: true);
        return new JsonRpcXenApiClient(endpoint, PinnedTls.CreateHandler(c => trust.Check("127.0.0.1", port, c), TimeSpan.FromSeconds(5)));
    }

    private static Task<object?> LoginAsync(IXenApiClient client) => client.CallAsync("session.login_with_password", ["root", "pw"], CancellationToken.None);

    [Fact]
    public async Task A_self_signed_server_is_trusted_on_first_use_then_a_new_certificate_is_refused_with_the_reason()
    {
        using var first = TestCertificates.SelfSigned("lab-host1");
        using var second = TestCertificates.SelfSigned("lab-host1");
        using var server = new TinyServer { Certificate = first };

        var notes = new StringWriter();
        using (var client = XeClient(server.Port, notes))
        {
            Assert.Equal("OpaqueRef:session", await LoginAsync(client));
        }

        Assert.Contains($"its certificate (SHA-256 {CertificateFingerprint.Sha256(first)}) is trusted from now on", notes.ToString(), StringComparison.Ordinal);

        using (var client = XeClient(server.Port, notes))
        {
            Assert.Equal("OpaqueRef:session", await LoginAsync(client));
        }

        server.Certificate = second;
        using (var client = XeClient(server.Port, notes))
        {
            var refused = await Assert.ThrowsAsync<XenApiTransportException>(() => LoginAsync(client));
            Assert.True(refused.CertificateRejected);
            Assert.False(refused.CouldNotConnect);
            Assert.StartsWith($"The certificate of 127.0.0.1:{server.Port} has changed", refused.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Https_to_a_plain_http_port_says_the_handshake_failed_and_suggests_nossl()
    {
        using var server = new TinyServer();
        using var client = XeClient(server.Port, new StringWriter());
        var failed = await Assert.ThrowsAsync<XenApiTransportException>(() => LoginAsync(client));
        Assert.False(failed.CertificateRejected);
        Assert.StartsWith($"Error: the TLS handshake with 127.0.0.1:{server.Port} failed", failed.Message, StringComparison.Ordinal);
        Assert.EndsWith("Use --nossl for a server that speaks plain HTTP.", failed.Message, StringComparison.Ordinal);
    }
}
