using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Whether a disk image can be opened with O_DIRECT (QEMU's <c>cache=none</c>). Support is per file system (older tmpfs,
/// some FUSE and overlay mounts refuse it), and QEMU opens a qcow2 image's backing files with the same cache mode, so the
/// whole backing chain is checked.
/// </summary>
public static class DirectIo
{
    private const uint Qcow2Magic = 0x514649fb; // "QFI\xfb"

    /// <summary>True when the image and every backing file it names open with O_DIRECT.</summary>
    public static bool Supported(string imagePath, string format)
    {
        var path = imagePath;
        var currentFormat = format;
        for (var depth = 0; depth < 64; depth++)
        {
            if (!CanOpenDirect(path))
            {
                return false;
            }

            if (currentFormat != "qcow2")
            {
                return true;
            }

            string? backing;
            try
            {
                backing = ReadQcow2BackingFile(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                return false;
            }

            if (backing is null)
            {
                return true;
            }

            if (backing.Contains(':', StringComparison.Ordinal) && !backing.StartsWith('/'))
            {
                return false; // a protocol (nbd:, json:...) rather than a file: not ours to judge
            }

            path = Path.IsPathRooted(backing) ? backing : Path.Combine(Path.GetDirectoryName(path) ?? "/", backing);
            currentFormat = "qcow2"; // checked from the file's magic on the next round
            if (!IsQcow2(path))
            {
                currentFormat = "raw";
            }
        }

        return false;
    }

    /// <summary>Opens the file read-only with O_DIRECT and closes it again.</summary>
    public static bool CanOpenDirect(string path)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !OperatingSystem.IsLinux())
        {
            return false; // O_DIRECT's value differs elsewhere; the safe answer is the page cache
        }

        var fd = NativeMethods.Open(path, NativeMethods.ORdOnly | NativeMethods.ODirect | NativeMethods.OCloExec);
        if (fd < 0)
        {
            return false;
        }

        NativeMethods.Close(fd);
        return true;
    }

    /// <summary>The backing file name stored in a qcow2 header, or null when the image has none.</summary>
    public static string? ReadQcow2BackingFile(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> header = stackalloc byte[20];
        file.ReadExactly(header);
        if (BinaryPrimitives.ReadUInt32BigEndian(header) != Qcow2Magic)
        {
            throw new InvalidDataException($"{path} is not a qcow2 image");
        }

        var offset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        var size = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (offset == 0 || size == 0)
        {
            return null;
        }

        if (size > 1023)
        {
            throw new InvalidDataException($"{path}: backing file name of {size} bytes");
        }

        var name = new byte[size];
        file.Seek((long)offset, SeekOrigin.Begin);
        file.ReadExactly(name);
        return Encoding.UTF8.GetString(name);
    }

    private static bool IsQcow2(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return file.Read(magic) == 4 && BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Magic;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
