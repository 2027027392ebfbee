namespace Corral.Storage;

/// <summary>
/// ISO libraries a host reads without mounting them (an NFS share, <c>server:/path</c>, through a userspace client): the
/// ISO SR's driver lists, measures and resolves their images through this, and QEMU opens each image with its own
/// driver for the share's protocol.
/// </summary>
public interface IRemoteIsoLibraries
{
    /// <summary>Whether <paramref name="location"/> names such a library.</summary>
    bool Handles(string location);

    /// <summary>Checks the library answers and is a directory; SM's ISO SR errors when not.</summary>
    Task ProbeAsync(string location, CancellationToken cancellationToken);

    /// <summary>The library's images (<c>*.iso</c>, <c>*.img</c>), by name.</summary>
    Task<IReadOnlyList<VolumeInfo>> ScanAsync(string location, CancellationToken cancellationToken);

    Task<SrUsage> GetUsageAsync(string location, CancellationToken cancellationToken);

    /// <summary>What QEMU opens for the image <paramref name="name"/>, and its format.</summary>
    (string Path, string Format) Resolve(string location, string name);
}
