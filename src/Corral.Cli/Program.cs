using System.Text;
using Corral.Cli;
using Corral.Cli.Api;
using Corral.Api.Client;

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
    var app = new XeApplication(stdout, stderr, Console.In, endpoint => new JsonRpcXenApiClient(endpoint), Environment.GetEnvironmentVariable);
    return await app.RunAsync(args, cts.Token);
}
finally
{
    await stdout.FlushAsync();
    await stdout.DisposeAsync();
    await stderr.DisposeAsync();
}
