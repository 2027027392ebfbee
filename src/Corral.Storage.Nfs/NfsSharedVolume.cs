using Corral.Model;

namespace Corral.Storage.Nfs;

/// <summary>
/// HA's statefile on an NFS SR: a raw file of its own in the SR's directory, <c>.corral-ha-statefile.raw</c> (a dot
/// name, so that SR.scan never takes it for a VDI; SR.destroy removes it with the SR's other files). It is written whole
/// (zeros) under a name of the creator's own and hard-linked into place: of hosts racing to make it, one link wins and
/// the others find it made, so no host's heartbeat slot is ever truncated under it.
/// </summary>
internal static class NfsStatefileVolume
{
    public const string Name = ".corral-ha-statefile.raw";

    public static async Task<(string Blockdev, string? Password)> EnsureAsync(NfsUrl url, long size, CancellationToken cancellationToken)
    {
        var path = $"{url.DirectoryOnExport}/{Name}";
        await NfsExport.WithAsync(url, session =>
        {
            if (session.Stat(path) is { } made)
            {
                if (made.Size < size)
                {
                    throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_STATEFILE", "",
                        $"{Name} on the SR is {made.Size} bytes, not {size}: it was not made by Corral");
                }

                return;
            }

            var temporary = $"{url.DirectoryOnExport}/.corral-ha-statefile.{Guid.NewGuid():N}.tmp";
            session.WriteNew(temporary, new byte[size]);
            try
            {
                session.Link(temporary, path);
            }
            catch (NfsException ex) when (ex.Errno == 17)
            {
                // EEXIST: another host made it first.
            }
            finally
            {
                session.Delete(temporary);
            }
        }, cancellationToken);

        // QEMU's nfs driver mounts the file's directory (NFSv3) and opens it; its path is the export's, then the SR's.
        var file = $"{url.Export}/{url.SrDirectory}/{Name}";
        return ($"driver=raw,file.driver=nfs,file.server.type=inet,file.server.host={Opt(url.Server)},file.path={Opt(file)}", null);
    }

    private static string Opt(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
