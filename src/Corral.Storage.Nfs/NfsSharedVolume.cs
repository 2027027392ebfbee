using Corral.Model;

namespace Corral.Storage.Nfs;

/// <summary>
/// A volume the pool keeps on an NFS SR (HA's statefile, the VMs' leases): a raw file of its own in the SR's directory,
/// <c>.corral-&lt;name&gt;.raw</c> (a dot name, so that SR.scan never takes it for a VDI; SR.destroy removes it with the
/// SR's other files). It is made at its full size (sparse: it reads as zeros) under a name of the creator's own and
/// hard-linked into place: of hosts racing to make it, one link wins and the others find it made, so nothing written
/// in it is ever truncated under a host.
/// </summary>
internal static class NfsSharedVolume
{
    public static string FileName(SharedVolume volume) => $".corral-{volume.Name}.raw";

    public static async Task<(string Blockdev, string? Password)> EnsureAsync(NfsUrl url, SharedVolume volume, CancellationToken cancellationToken)
    {
        var name = FileName(volume);
        var path = $"{url.DirectoryOnExport}/{name}";
        await NfsExport.WithAsync(url, session =>
        {
            if (session.Stat(path) is { } made)
            {
                if (made.Size < volume.Size)
                {
                    throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_VOLUME", "",
                        $"{name} on the SR is {made.Size} bytes, not {volume.Size}: it was not made by Corral");
                }

                return;
            }

            var temporary = $"{url.DirectoryOnExport}/.corral-{volume.Name}.{Guid.NewGuid():N}.tmp";
            session.CreateSized(temporary, volume.Size);
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
        var file = $"{url.Export}/{url.SrDirectory}/{name}";
        return ($"driver=raw,file.driver=nfs,file.server.type=inet,file.server.host={Opt(url.Server)},file.path={Opt(file)}", null);
    }

    private static string Opt(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
