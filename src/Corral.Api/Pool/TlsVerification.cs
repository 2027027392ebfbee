using System.Globalization;
using Corral.Api.Https;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>
/// Whether this host checks the certificates of the hosts it calls (<see cref="RemoteHosts"/>): always, unless an
/// administrator turned it off on this host alone with <c>host.emergency_disable_tls_verification</c> (a host whose
/// pool's certificate records it can no longer match, as after a botched certificate change), until
/// <c>host.emergency_reenable_tls_verification</c> or <c>pool.enable_tls_verification</c>. Kept as a file in the state
/// directory (<c>tls-verification-disabled</c>, saying when and why), as xapi keeps its own as a file
/// (<c>verify-certificates</c>, there present while verifying), so that it holds across restarts and without the pool
/// database.
/// </summary>
public sealed class TlsVerification(IOptions<ApiOptions> options, TimeProvider time, ILogger<TlsVerification> logger)
{
    public const string FileName = "tls-verification-disabled";

    private string? Path => options.Value.StateDirectory.Length > 0 ? System.IO.Path.Combine(options.Value.StateDirectory, FileName) : null;

    /// <summary>True unless turned off on this host.</summary>
    public bool Enabled => Path is not { } path || !File.Exists(path);

    /// <summary>Turns checking off on this host (idempotent).</summary>
    public void Disable()
    {
        var path = Path ?? throw new InvalidOperationException("this host has no state directory to keep its TLS verification setting in");
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture,
            $"# host.emergency_disable_tls_verification at {time.GetUtcNow():u}: this host accepts any certificate from the hosts it calls.\n")
            + "# xe host-emergency-reenable-tls-verification (or pool-enable-tls-verification) removes this file.\n");
        logger.LogCritical(HttpsEvents.TlsVerificationDisabled,
            "TLS verification disabled on this host (emergency): it accepts any certificate from the hosts it calls until it is enabled again ({Path})", path);
    }

    /// <summary>Turns checking on again on this host (idempotent).</summary>
    public void Enable()
    {
        if (Path is { } path && File.Exists(path))
        {
            File.Delete(path);
            logger.LogWarning(HttpsEvents.TlsVerificationEnabled, "TLS verification enabled again on this host: it checks the certificates of the hosts it calls");
        }
    }

    /// <summary>Makes the host's <c>tls_verification_enabled</c> say <paramref name="enabled"/> (no write when it already does).</summary>
    public static Task RecordAsync(IPoolDatabase database, string hostRef, bool enabled, CancellationToken cancellationToken) =>
        database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            if (objs[0].Get(XenApi.Host.TlsVerificationEnabled) != enabled)
            {
                var h = objs[0].Clone();
                h.Set(XenApi.Host.TlsVerificationEnabled, enabled);
                tx.Update(h);
            }
        }, cancellationToken);
}
