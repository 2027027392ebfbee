using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

/// <summary>
/// This host's copy of the pool's trusted CA certificates (<c>pool.install_ca_certificate</c>), one PEM file per
/// certificate by its name in <c>trusted-ca/</c> of the host's state directory (xapi's <c>/etc/stunnel/certs</c>),
/// brought up to date at start and every 10 seconds: added, changed and removed as the pool's records are. LDAPS to the
/// pool's directory trusts what is there (<c>Corral:Auth:Tls</c>).
/// </summary>
public sealed class TrustedCaDirectory(IPoolDatabase database, IOptions<ApiOptions> options, ILogger<TrustedCaDirectory> logger) : BackgroundService
{
    public const string DirectoryName = "trusted-ca";
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private static readonly EventId Synced = new(1325, "TrustedCaCertificatesChanged");
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The directory; null for a host without a state directory.</summary>
    public string? Path => options.Value.StateDirectory.Length == 0 ? null : System.IO.Path.Combine(options.Value.StateDirectory, DirectoryName);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        do
        {
            try
            {
                await SyncAsync(stoppingToken);
            }
            // Any failure but the host's own stop is retried at the next tick: a refresher of a local directory must not
            // stop the agent (an unexpected answer of etcd's once did, after a partition healed).
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Could not bring the trusted CA certificates in {Path} up to date; retrying", Path);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }

    /// <summary>Writes the pool's CA certificates to the directory and removes files of those uninstalled.</summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        if (Path is not { } directory)
        {
            return;
        }

        // One at a time: the periodic pass and a caller that needs the directory now write the same files.
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await SyncLockedAsync(directory, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task SyncLockedAsync(string directory, CancellationToken cancellationToken)
    {

        var wanted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var record in await Methods.CaCertificateMethods.CaRecordsAsync(database, cancellationToken))
        {
            var name = record.Get(XenApi.Certificate.Name);
            if (Methods.CaCertificateMethods.IsSafeName(name) && await database.Leases.GetValueAsync(PoolKeys.CertificatePem(record.Ref), cancellationToken) is { } pem)
            {
                wanted[name] = pem;
            }
        }

        Directory.CreateDirectory(directory);
        var changed = 0;
        foreach (var (name, pem) in wanted)
        {
            var file = System.IO.Path.Combine(directory, name);
            if (!File.Exists(file) || await File.ReadAllTextAsync(file, cancellationToken) != pem)
            {
                await File.WriteAllTextAsync(file + ".new", pem, cancellationToken);
                File.Move(file + ".new", file, overwrite: true);
                changed++;
            }
        }

        foreach (var file in Directory.EnumerateFiles(directory).Where(f => !wanted.ContainsKey(System.IO.Path.GetFileName(f))).ToList())
        {
            File.Delete(file);
            changed++;
        }

        if (changed > 0)
        {
            logger.LogInformation(Synced, "Trusted CA certificates in {Path}: {Names}", directory, string.Join(", ", wanted.Keys.Order()));
        }
    }
}
