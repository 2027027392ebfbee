using System.Runtime.InteropServices;

namespace Corral.Hypervisor.Qemu;

/// <summary>The few libc calls .NET does not offer: open(2) with O_DIRECT, and kill(2) for a process that is not our child.</summary>
internal static partial class NativeMethods
{
    public const int ORdOnly = 0;
    public const int ODirect = 0x4000; // x86_64 and aarch64 differ; Corral's hosts are x86_64 (asserted at use)
    public const int OCloExec = 0x80000;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int Esrch = 3;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
