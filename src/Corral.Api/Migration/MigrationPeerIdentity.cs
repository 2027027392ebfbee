using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>
/// Each host's TLS identity for the streams its QEMU opens to other hosts (a migration's memory stream, a storage
/// migration's NBD client): the subject of its certificate of the pool's CA, as QEMU names a peer, at
/// <c>/corral/migration-identity/&lt;host ref&gt;</c>. The host writes it at every agent start; a migration takes its
/// source's into its record (<see cref="MigrationRecord.SourceTlsIdentity"/>), and the destination accepts that
/// identity alone. Public data (a certificate's subject); a host without TLS material has none.
/// </summary>
public static class MigrationPeerIdentity
{
    public const string Prefix = PoolKeys.Root + "migration-identity/";

    public static string KeyOf(string hostRef) => Prefix + hostRef;

    /// <summary>The identity <paramref name="hostRef"/> last published; empty when it has none.</summary>
    public static async Task<string> ReadAsync(IPoolDatabase database, string hostRef, CancellationToken cancellationToken) =>
        (await database.Leases.GetWithRevisionAsync(KeyOf(hostRef), cancellationToken)).Value ?? "";

    /// <summary>Records this host's identity, or forgets it (null: the host has no TLS material now).</summary>
    public static async Task PublishAsync(IPoolDatabase database, string hostRef, string? identity, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        if (identity is null)
        {
            tx.DeleteKey(KeyOf(hostRef));
        }
        else
        {
            tx.PutKey(KeyOf(hostRef), identity);
        }

        await database.CommitAsync(tx, cancellationToken);
    }
}
