using Corral.Api.Client.Tls;
using Corral.Api.Https;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>
/// The certificates this host trusts when it calls another host: the pool's host certificates, by the fingerprints of
/// their <c>Certificate</c> records. Kept in memory and in the state directory (<c>pool-certificates</c>, one
/// <c>fingerprint host</c> line each), as xapi keeps the pool's certificates in <c>/etc/stunnel/certs-pool</c>, so that
/// calls made without the pool database (a membership change between two generations of the agent, a recovery with
/// quorum lost) are checked too.
/// </summary>
public sealed class PoolCertificateTrust
{
    public const string FileName = "pool-certificates";
    private readonly string? _path;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private Dictionary<string, string> _byFingerprint;

    public PoolCertificateTrust(IOptions<ApiOptions> options, ILogger<PoolCertificateTrust> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger;
        _path = options.Value.StateDirectory.Length > 0 ? Path.Combine(options.Value.StateDirectory, FileName) : null;
        _byFingerprint = Read(_path);
    }

    /// <summary>Whether a certificate with this SHA-256 fingerprint is one of the pool's host certificates.</summary>
    public bool IsTrusted(string fingerprint)
    {
        lock (_lock)
        {
            return _byFingerprint.ContainsKey(Normalize(fingerprint));
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byFingerprint.Count;
            }
        }
    }

    /// <summary>Trusts exactly these host certificates (fingerprint, host), kept on disk when they changed.</summary>
    public void Replace(IEnumerable<PoolHostCertificate> certificates)
    {
        var next = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var certificate in certificates.Where(c => c.Fingerprint.Length > 0))
        {
            next[Normalize(certificate.Fingerprint)] = certificate.HostRef;
        }

        lock (_lock)
        {
            if (next.Count == _byFingerprint.Count && next.All(kv => _byFingerprint.TryGetValue(kv.Key, out var h) && h == kv.Value))
            {
                return;
            }

            _byFingerprint = next;
            Write(next);
        }

        _logger.LogInformation(HttpsEvents.PoolCertificatesLearnt, "Trusting {Count} host certificates of the pool for calls to other hosts", next.Count);
    }

    /// <summary>Reads the pool's host certificates from the pool database and trusts exactly those.</summary>
    public async Task RefreshAsync(IPoolDatabase database, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var records = await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken);
        Replace(HostCertificates(records));
    }

    /// <summary>The (fingerprint, host) of the host certificates among <c>Certificate</c> records.</summary>
    public static IEnumerable<PoolHostCertificate> HostCertificates(IEnumerable<XenObject> records) =>
        records.Where(c => c.Get(XenApi.Certificate.Type) == CertificateType.Host)
            .Select(c => new PoolHostCertificate(c.Get(XenApi.Certificate.Fingerprint), c.Get(XenApi.Certificate.Host)));

    /// <summary>The same from <c>Certificate.get_all_records</c> as another host answered it.</summary>
    public static IReadOnlyList<PoolHostCertificate> HostCertificates(IReadOnlyDictionary<string, object?> records) =>
        records.Values.OfType<IReadOnlyDictionary<string, object?>>()
            .Where(r => r.GetValueOrDefault("type") as string == "host")
            .Select(r => new PoolHostCertificate(r.GetValueOrDefault("fingerprint") as string ?? "", r.GetValueOrDefault("host") as string ?? ""))
            .ToList();

    private static string Normalize(string fingerprint) => fingerprint.Trim().ToUpperInvariant();

    private static Dictionary<string, string> Read(string? path)
    {
        var known = new Dictionary<string, string>(StringComparer.Ordinal);
        if (path is null || !File.Exists(path))
        {
            return known;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && !parts[0].StartsWith('#'))
            {
                known[Normalize(parts[0])] = parts.Length > 1 ? parts[1] : "";
            }
        }

        return known;
    }

    private void Write(Dictionary<string, string> certificates)
    {
        if (_path is null)
        {
            return;
        }

        var temporary = _path + ".tmp";
        File.WriteAllLines(temporary, certificates.Select(kv => $"{kv.Key} {kv.Value}"));
        File.Move(temporary, _path, overwrite: true);
    }
}

/// <summary>One host certificate of the pool: its SHA-256 fingerprint and the host it belongs to.</summary>
public sealed record PoolHostCertificate(string Fingerprint, string HostRef);
