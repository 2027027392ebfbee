using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Xva;

/// <summary>Where SRs' volumes are on which hosts: an SR is reachable on a host whose PBD for it is attached.</summary>
public static class SrDirectories
{
    /// <summary>The SR's directory on <paramref name="hostRef"/> (<see cref="SrLocation.Of"/> its attached PBD's device_config), or null.</summary>
    public static async Task<string?> OnHostAsync(IPoolDatabase database, string srRef, string hostRef, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        return await OfAsync(database, await database.GetAsync(XenClasses.SR, srRef, cancellationToken), hostRef, requireAttached: true, cancellationToken);
    }

    /// <summary>
    /// The SR's location as <paramref name="hostRef"/> reaches it (<see cref="SrLocation.Of"/> its PBD's device_config,
    /// the passwords' secrets read), or null when the SR is not plugged there (<paramref name="requireAttached"/> false:
    /// when the host merely has a PBD for it).
    /// </summary>
    public static async Task<string?> OfAsync(IPoolDatabase database, XenObject sr, string hostRef, bool requireAttached, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(sr);
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is { } pbd
                && pbd.Get(XenApi.PBD.Host) == hostRef && (pbd.Get(XenApi.PBD.CurrentlyAttached) || !requireAttached))
            {
                return SrLocation.Of(await Methods.HostDeviceConfig.ResolveAsync(database, pbd.Get(XenApi.PBD.DeviceConfig), hostRef, cancellationToken), sr.Uuid);
            }
        }

        return null;
    }

    /// <summary>
    /// Where an import or export keeps its raw scratch copy of a volume: next to the SR's volumes when they are a local
    /// directory (a name a scan never adopts), this machine's temporary directory for an NFS SR reached in userspace
    /// (qemu-img reads and writes its volumes over nfs://, but a FileStream needs a local file).
    /// </summary>
    public static string ScratchFor(string location) => NfsUrl.IsNfs(location) ? Path.GetTempPath() : location;

    /// <summary>
    /// A live host other than <paramref name="exceptHostRef"/> on which every SR of <paramref name="srRefs"/> is
    /// attached, for a redirect (xapi's export and import send the client to such a host); null if there is none.
    /// </summary>
    public static async Task<XenObject?> HostSeeingAllAsync(IPoolDatabase database, IReadOnlyCollection<string> srRefs, string exceptHostRef,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
        {
            if (host.Ref == exceptHostRef || !host.Get(XenApi.Host.Enabled))
            {
                continue;
            }

            var seesAll = true;
            foreach (var sr in srRefs)
            {
                seesAll &= await OnHostAsync(database, sr, host.Ref, cancellationToken) is not null;
            }

            if (seesAll)
            {
                return host;
            }
        }

        return null;
    }
}
