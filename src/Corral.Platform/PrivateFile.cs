namespace Corral.Platform;

/// <summary>
/// A file only its owner reads (mode 0600 from its creation, never readable by others for a moment): where a secret is
/// handed to a program that takes it from a file, as QEMU's and qemu-storage-daemon's <c>secret</c> objects do.
/// </summary>
public static class PrivateFile
{
    /// <param name="mode"><see cref="FileMode.CreateNew"/> for a new name in a shared directory, so that nothing already there is written through.</param>
    public static void Write(string path, string text, FileMode mode = FileMode.Create)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }
}
