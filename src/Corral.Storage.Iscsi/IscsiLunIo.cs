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
            await QemuImgAsync(target, lun, offset, length, (opts, secret) => ["convert", .. secret, "--image-opts", opts, "-O", "raw", output], cancellationToken);
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
            await QemuImgAsync(target, lun, offset, data.Length,
                (opts, secret) => ["convert", .. secret, "-n", "-f", "raw", input, "--target-image-opts", opts], cancellationToken);
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
        await QemuImgAsync(target, lun, offset, length, (opts, secret) => ["convert", .. secret, .. image.Options, "-n", image.Name, "--target-image-opts", opts], cancellationToken);
    }

    /// <summary>qemu-img's --image-opts for a raw range of the LUN (commas in values doubled, as QemuOpts wants).</summary>
    public static string ImageOptions(IscsiLocation target, int lun, long offset, long length, string? secretId) =>
        new IscsiExtentPath(target.Portal, target.TargetIqn, lun, offset, length, target.ChapUser, target.ChapPassword, target.Initiator).ImageOptions(secretId ?? "");

    private static async Task QemuImgAsync(IscsiLocation target, int lun, long offset, long length,
        Func<string, string[], string[]> arguments, CancellationToken cancellationToken)
    {
        string? secretFile = null;
        try
        {
            string[] secret = [];
            if (target.ChapUser is not null)
            {
                secretFile = Path.Combine(Path.GetTempPath(), $"corral-iscsi-{Guid.NewGuid():N}.secret");
                PrivateFile.Write(secretFile, target.ChapPassword ?? "", FileMode.CreateNew);

                secret = ["--object", $"secret,id=chap0,file={Q(secretFile)}"];
            }

            var result = await CommandRunner.RunAsync("qemu-img", arguments(ImageOptions(target, lun, offset, length, "chap0"), secret), cancellationToken);
            if (!result.Succeeded)
            {
                throw SrBackend.Failure(46, "The VDI is not available", result.StandardError.Trim());
            }
        }
        finally
        {
            if (secretFile is not null)
            {
                File.Delete(secretFile);
            }
        }
    }

    private static string Q(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
