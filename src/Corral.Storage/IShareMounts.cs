namespace Corral.Storage;

/// <summary>
/// Network shares that an SR's location names and that the host mounts before the SR's driver reads them as a directory
/// (an ISO library on an SMB share, <c>//server/share</c>, as XenServer's ISO SR mounts it). A PBD's plug mounts the
/// share with the PBD's credentials; its unplug unmounts it.
/// </summary>
public interface IShareMounts
{
    /// <summary>Whether <paramref name="location"/> names such a share.</summary>
    bool Handles(string location);

    /// <summary>The directory the share's location is (or will be) reached at on this host.</summary>
    string LocalDirectory(string location);

    /// <summary>
    /// Mounts the share with the credentials of <paramref name="deviceConfig"/> (<c>username</c>, <c>cifspassword</c>),
    /// unless it is mounted and readable already; SM's ISO errors when it cannot be.
    /// </summary>
    Task MountAsync(string location, IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken);

    /// <summary>Unmounts the share (nothing when it is not mounted) and forgets its credentials.</summary>
    Task UnmountAsync(string location, CancellationToken cancellationToken);
}

/// <summary>The plug's and unplug's step for any SR location: a share's mount or unmount, nothing for other locations.</summary>
public static class ShareMountsExtensions
{
    public static Task MountIfShareAsync(this IShareMounts shares, string location, IReadOnlyDictionary<string, string> deviceConfig,
        CancellationToken cancellationToken) =>
        shares.Handles(location) ? shares.MountAsync(location, deviceConfig, cancellationToken) : Task.CompletedTask;

    public static Task UnmountIfShareAsync(this IShareMounts shares, string location, CancellationToken cancellationToken) =>
        shares.Handles(location) ? shares.UnmountAsync(location, cancellationToken) : Task.CompletedTask;
}
