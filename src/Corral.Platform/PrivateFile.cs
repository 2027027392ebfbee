namespace Corral.Platform;

/// <summary>
/// A file only its owner reads (mode 0600 from its creation, never readable by others for a moment): where a secret is
/// handed to a program that takes it from a file, as QEMU's and qemu-storage-daemon's <c>secret</c> objects do, and
/// where keys, certificates and state of the host's own are kept.
/// </summary>
public static class PrivateFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <param name="mode"><see cref="FileMode.CreateNew"/> for a new name in a shared directory, so that nothing already there is written through.</param>
    public static void Write(string path, string text, FileMode mode = FileMode.Create)
    {
        using var stream = Open(path, mode);
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> in one rename with a new owner-only file that <paramref name="write"/> fills: a
    /// reader finds the old file or the new one, never half of it. <paramref name="finalMode"/> (0400 for a key only
    /// its owner reads) is set before the rename.
    /// </summary>
    public static void Replace(string path, Action<Stream> write, UnixFileMode? finalMode = null)
    {
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        File.Delete(temporary);
        using (var stream = Open(temporary, FileMode.CreateNew))
        {
            write(stream);
        }

        if (finalMode is { } final && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, final);
        }

        File.Move(temporary, full, overwrite: true);
    }

    /// <summary><see cref="Replace(string, Action{Stream}, UnixFileMode?)"/> with text.</summary>
    public static void Replace(string path, string text, UnixFileMode? finalMode = null) =>
        Replace(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        }, finalMode);

    private static FileStream Open(string path, FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        return new FileStream(path, options);
    }
}
