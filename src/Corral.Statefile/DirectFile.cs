using System.Runtime.InteropServices;

namespace Corral.Statefile;

/// <summary>
/// Whole-block reads and writes that bypass the host's page cache (O_DIRECT), so that what another host wrote to a
/// shared volume is what is read, and a write has reached the storage when it returns (it is followed by fdatasync).
/// .NET's file API has no O_DIRECT; these are libc's open, pread, pwrite and fdatasync on a buffer aligned to a block.
/// </summary>
internal static partial class DirectFile
{
    public const int BlockSize = 4096;
    private const int ReadOnly = 0, ReadWrite = 2;
    private const int ODirect = 0x4000, OCloExec = 0x80000; // x86_64's values (asserted below)

    /// <summary>Fills <paramref name="into"/> (a whole number of blocks) from <paramref name="offset"/>.</summary>
    public static unsafe void Read(string path, long offset, Span<byte> into)
    {
        var fd = OpenDirect(path, ReadOnly);
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)into.Length, BlockSize);
        try
        {
            var done = 0;
            while (done < into.Length)
            {
                var n = PRead(fd, buffer + done, (nuint)(into.Length - done), offset + done);
                done += n > 0 ? (int)n : n == 0 ? throw new IOException($"{path} ends at {offset + done}") : throw Error("read", path);
            }

            new ReadOnlySpan<byte>(buffer, into.Length).CopyTo(into);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            _ = Close(fd);
        }
    }

    /// <summary>Writes <paramref name="data"/> (a whole number of blocks) at <paramref name="offset"/>, and syncs it.</summary>
    public static unsafe void Write(string path, long offset, ReadOnlySpan<byte> data)
    {
        var fd = OpenDirect(path, ReadWrite);
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)data.Length, BlockSize);
        try
        {
            data.CopyTo(new Span<byte>(buffer, data.Length));
            var done = 0;
            while (done < data.Length)
            {
                var n = PWrite(fd, buffer + done, (nuint)(data.Length - done), offset + done);
                done += n > 0 ? (int)n : throw Error("write", path);
            }

            if (FDataSync(fd) != 0)
            {
                throw Error("sync", path);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            _ = Close(fd);
        }
    }

    private static int OpenDirect(string path, int access)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            throw new PlatformNotSupportedException("O_DIRECT's value is x86_64's here");
        }

        var fd = Open(path, access | ODirect | OCloExec);
        return fd >= 0 ? fd : throw Error("open", path);
    }

    private static IOException Error(string what, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"could not {what} {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static unsafe partial nint PRead(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static unsafe partial nint PWrite(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
