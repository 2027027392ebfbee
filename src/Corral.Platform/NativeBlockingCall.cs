using System.Runtime.InteropServices;

namespace Corral.Platform;

/// <summary>
/// Where a native library's blocking calls run (libnfs's, libiscsi's synchronous ones): a thread-pool thread, off the
/// caller's async context, with SIGCHLD blocked for the call's length. Both libraries wait for each reply in poll(), and
/// give up with "Poll failed" when poll() is interrupted by a signal; .NET takes SIGCHLD on any thread that does not
/// block it whenever a child process ends, and the agent's children (qemu-img, QEMU, iscsi tools) end all the time.
/// Blocked here, the signal goes to another thread.
/// </summary>
public static partial class NativeBlockingCall
{
    private const int SigBlock = 0;
    private const int SigSetMask = 2;
    private const int SigChld = 17; // Linux, on x86-64 and arm64 alike
    private const int SigSetBytes = 128; // glibc's sigset_t

    public static Task<T> Run<T>(Func<T> work, CancellationToken cancellationToken) =>
        Task.Run(() => WithoutChildSignals(work), cancellationToken);

    /// <summary>Runs <paramref name="work"/> on this thread with SIGCHLD blocked, then restores the thread's mask.</summary>
    public static unsafe T WithoutChildSignals<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var blocked = stackalloc byte[SigSetBytes];
        var before = stackalloc byte[SigSetBytes];
        if (SigEmptySet(blocked) != 0 || SigAddSet(blocked, SigChld) != 0 || PthreadSigmask(SigBlock, blocked, before) != 0)
        {
            return work(); // as before: a call a signal interrupts fails and says so
        }

        try
        {
            return work();
        }
        finally
        {
            _ = PthreadSigmask(SigSetMask, before, null);
        }
    }

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static unsafe partial int SigEmptySet(byte* set);

    [LibraryImport("libc", EntryPoint = "sigaddset")]
    private static unsafe partial int SigAddSet(byte* set, int signal);

    [LibraryImport("libc", EntryPoint = "pthread_sigmask")]
    private static unsafe partial int PthreadSigmask(int how, byte* set, byte* old);
}
