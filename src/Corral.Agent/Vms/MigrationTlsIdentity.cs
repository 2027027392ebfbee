using System.Security.Cryptography;
using Corral.Agent.Hosting;
using Corral.Api.Migration;
using Corral.Hypervisor.Qemu;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>
/// Publishes this host's TLS identity for migrations (<see cref="MigrationPeerIdentity"/>) at every agent start: the
/// subject of its certificate of the pool's CA, which a destination's QEMU then accepts as the only source of a
/// migration from here. A host without the certificate (a pool without TLS material) publishes none.
/// </summary>
public sealed class MigrationTlsIdentity(IPoolDatabase database, HostIdentity identity, IOptions<QemuOptions> qemu, ILogger<MigrationTlsIdentity> logger)
{
    public static readonly EventId Published = new(2030, "MigrationTlsIdentityPublished");
    public static readonly EventId Unreadable = new(2031, "MigrationTlsIdentityUnreadable");
    public static readonly EventId NonePublished = new(2032, "MigrationTlsIdentityNone");

    public async Task PublishAsync(CancellationToken cancellationToken)
    {
        string? subject = null;
        try
        {
            subject = QemuTlsCredentials.LocalIdentity(qemu.Value);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            // Without a usable certificate this host cannot be a migration's TLS client: destinations refuse it (event 2112).
            logger.LogWarning(Unreadable, ex, "This host's certificate {File} cannot be read: no migration identity published", qemu.Value.TlsCertificateFile);
        }

        await MigrationPeerIdentity.PublishAsync(database, identity.Ref, subject, cancellationToken);
        if (subject is null)
        {
            logger.LogInformation(NonePublished, "No TLS material: migrations from this host run over plain TCP");
        }
        else
        {
            logger.LogInformation(Published, "Migrations from this host identify as {Subject}", subject);
        }
    }
}
