namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The secrets a VM's QEMU reads as it starts, each in a file of the VM's runtime directory that only root reads: the
/// CHAP password of each disk on an iSCSI LUN behind CHAP (<see cref="VmRuntimePaths.ChapSecret"/>, named by a
/// <c>secret</c> object on the command line, which any user of the host can read in <c>/proc</c>).
/// </summary>
internal static class QemuSecrets
{
    private const string UnixOnly = "a VM's runtime directory and secrets are written with Unix modes";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Makes the VM's runtime directory, mode 0700 (its launch spec names the same secrets).</summary>
    public static void CreateDirectory(VmRuntimePaths paths)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException(UnixOnly);
        }
        Directory.CreateDirectory(paths.Directory, OwnerOnly | UnixFileMode.UserExecute);
        File.SetUnixFileMode(paths.Directory, OwnerOnly | UnixFileMode.UserExecute);
    }

    public static async Task WriteAsync(VmLaunchSpec spec, VmRuntimePaths paths, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException(UnixOnly);
        }
        foreach (var disk in spec.Disks)
        {
            if (disk.Path is not null && QemuBlockProtocol.Credentials(disk.Path) is var (_, password))
            {
                var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = OwnerOnly };
                await using var stream = new FileStream(paths.ChapSecret(disk.Index), options);
                await using var writer = new StreamWriter(stream);
                await writer.WriteAsync(password.AsMemory(), cancellationToken);
            }
        }
    }
}
