namespace Corral.Platform;

/// <summary>This process's mounts, as the kernel lists them in /proc/self/mountinfo.</summary>
public static class MountTable
{
    /// <summary>
    /// The file system type mounted at <paramref name="path"/> in this process's mount namespace (<c>fuse</c>,
    /// <c>fuse.smbnetfs</c>...), or null when nothing is mounted there.
    /// </summary>
    public static string? FileSystemAt(string path) => FileSystemAt(File.ReadLines("/proc/self/mountinfo"), path);

    /// <summary>As <see cref="FileSystemAt(string)"/>, over mountinfo's lines.</summary>
    public static string? FileSystemAt(IEnumerable<string> mountInfo, string path)
    {
        foreach (var line in mountInfo)
        {
            // "id parent major:minor root mount-point options [optional fields...] - fstype source super-options"
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-");
            if (dash > 4 && dash + 1 < fields.Length && Unescape(fields[4]) == path)
            {
                return fields[dash + 1];
            }
        }

        return null;
    }

    /// <summary>mountinfo writes a space, tab, line break and backslash in a path as octal escapes.</summary>
    private static string Unescape(string field) => field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
        .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
