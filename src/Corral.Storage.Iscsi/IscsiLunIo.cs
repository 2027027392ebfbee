using Corral.Platform;

namespace Corral.Storage.Iscsi;

/// <summary>
/// Reads and writes byte ranges of a LUN with qemu-img's iscsi driver under a raw node limited to the range (offset,
/// size), so a write can never spill past it. A CHAP password goes to qemu-img in a secret file readable by root only,
/// never on its command line.
/// </summary>
public static class IscsiLunIo
{
    /// <summary>The bytes [offset, offset+length) of the LUN.</summary>
    public static async Task<byte[]> ReadAsync(IscsiLocation target, int lun, long offset, long length, CancellationToken cancellationToken)
    {
        var output = Path.Combine(Path.GetTempPath(), $"corral-iscsi-{Guid.NewGuid():N}.bin");
        try
        {
            await QemuImgAsync(target, lun, offset, length, "--image-opts", range => ["convert", .. range.Options, range.Name, "-O", "raw", output], cancellationToken);
            return await File.ReadAllBytesAsync(output, cancellationToken);
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; the range is exactly its length.</summary>
    public static async Task WriteAsync(IscsiLocation target, int lun, long offset, byte[] data, CancellationToken cancellationToken)
    {
        var input = Path.Combine(Path.GetTempPath(), $"corral-iscsi-{Guid.NewGuid():N}.bin");
        try
        {
            await File.WriteAllBytesAsync(input, data, cancellationToken);
            await QemuImgAsync(target, lun, offset, data.Length, "--target-image-opts",
                range => ["convert", .. range.Options, "-n", "-f", "raw", input, range.Name], cancellationToken);
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>
    /// Copies an image (any format qemu-img reads, or another extent: <see cref="IscsiExtentPath"/>) into an extent, as
    /// raw. The bytes of the extent past the image's size are left as they were.
    /// </summary>
    public static async Task CopyIntoAsync(string source, IscsiLocation target, int lun, long offset, long length, CancellationToken cancellationToken)
    {
        using var image = QemuImgImage.Open(source);
        await QemuImgAsync(target, lun, offset, length, "--target-image-opts",
            range => ["convert", .. image.Options, .. range.Options, "-n", image.Name, range.Name], cancellationToken);
    }

    /// <summary>qemu-img's --image-opts for a raw range of the LUN (commas in values doubled, as QemuOpts wants).</summary>
    public static string ImageOptions(IscsiLocation target, int lun, long offset, long length, string? secretId) =>
        Range(target, lun, offset, length).ImageOptions(secretId ?? "");

    private static IscsiExtentPath Range(IscsiLocation target, int lun, long offset, long length) =>
        new(target.Portal, target.TargetIqn, lun, offset, length, target.ChapUser, target.ChapPassword, target.Initiator);

    /// <summary>qemu-img run on the LUN's range, opened with <paramref name="imageOptsFlag"/> (its CHAP secret in a private file for the run's length).</summary>
    private static async Task QemuImgAsync(IscsiLocation target, int lun, long offset, long length, string imageOptsFlag,
        Func<QemuImgImage, string[]> arguments, CancellationToken cancellationToken)
    {
        using var range = QemuImgImage.Open(Range(target, lun, offset, length), imageOptsFlag, "chap0");
        var result = await CommandRunner.RunAsync("qemu-img", arguments(range), cancellationToken);
        if (!result.Succeeded)
        {
            throw SrBackend.Failure(46, "The VDI is not available", result.StandardError.Trim());
        }
    }
}
