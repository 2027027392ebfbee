using Corral.Platform;

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

    public static void Write(VmLaunchSpec spec, VmRuntimePaths paths)
    {
        foreach (var disk in spec.Disks)
        {
            if (disk.Path is not null && QemuBlockProtocol.Credentials(disk.Path) is var (_, password))
            {
                PrivateFile.Write(paths.ChapSecret(disk.Index), password);
            }
        }
    }
}
