using System.Text;
using Corral.Cli;
using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Api.Client.Tls;

// xe: XenServer's command line, for a Corral pool. See XeApplication for the run, docs in the README.
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};

var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
var stderr = new StreamWriter(Console.OpenStandardError(), new UTF8Encoding(false)) { AutoFlush = true };
try
{
    // HTTPS: the pool's self-signed certificates trusted on first use and pinned, as XenCenter does.
    var trust = new ServerCertificateTrust(KnownServers.ForUser(Environment.GetEnvironmentVariable), stderr);
    var app = new XeApplication(stdout, stderr, Console.In, endpoint => new JsonRpcXenApiClient(endpoint, endpoint.Scheme == Uri.UriSchemeHttps
        ? PinnedTls.CreateHandler(certificate => trust.Check(endpoint.Host.Trim('[', ']'), endpoint.Port, certificate), JsonRpcXenApiClient.ConnectTimeout)
        : null), Environment.GetEnvironmentVariable);
    return await app.RunAsync(args, cts.Token);
}
finally
{
    await stdout.FlushAsync();
    await stdout.DisposeAsync();
    await stderr.DisposeAsync();
}
