using Corral.Platform;

namespace Corral.Storage;

/// <summary>
/// An image as qemu-img is told to open it: a path or URL as it is; an iSCSI extent (<see cref="IscsiExtentPath"/>) as
/// image options of a raw node bounded to the extent, its CHAP password in a secret object read from a file only its
/// owner reads (never on the command line, which every user of the host can read). Disposing removes that file.
/// </summary>
public sealed class QemuImgImage : IDisposable
{
    private readonly string? _secretFile;

    private QemuImgImage(IReadOnlyList<string> options, string name, string? secretFile)
    {
        Options = options;
        Name = name;
        _secretFile = secretFile;
    }

    /// <summary>What goes before the image's name: the secret object and the flag that the name is options (<paramref name="imageOptsFlag"/>).</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>The image's name on qemu-img's command line.</summary>
    public string Name { get; }

    /// <summary>
    /// <paramref name="path"/> opened by qemu-img; <paramref name="imageOptsFlag"/> is <c>--image-opts</c> for a source,
    /// <c>--target-image-opts</c> for convert's target; <paramref name="secretId"/> names the secret object, unique on one command line.
    /// </summary>
    public static QemuImgImage Open(string path, string imageOptsFlag = "--image-opts", string secretId = "chap-source") =>
        IscsiExtentPath.TryParse(path) is { } extent ? Open(extent, imageOptsFlag, secretId) : new QemuImgImage([], path, null);

    /// <summary>The extent opened by qemu-img, as <see cref="Open(string, string, string)"/> opens an extent's path.</summary>
    public static QemuImgImage Open(IscsiExtentPath extent, string imageOptsFlag, string secretId)
    {
        ArgumentNullException.ThrowIfNull(extent);
        if (extent.User is null)
        {
            return new QemuImgImage([imageOptsFlag], extent.ImageOptions(secretId), null);
        }

        var secretFile = Path.Combine(Path.GetTempPath(), $"corral-iscsi-{Guid.NewGuid():N}.secret");
        PrivateFile.Write(secretFile, extent.Password ?? "", FileMode.CreateNew);
        return new QemuImgImage(["--object", $"secret,id={secretId},file={secretFile.Replace(",", ",,", StringComparison.Ordinal)}", imageOptsFlag],
            extent.ImageOptions(secretId), secretFile);
    }

    /// <summary>The path as logs may show it (an iSCSI extent's without its password).</summary>
    public static string Describe(string path) => IscsiExtentPath.TryParse(path)?.ToString() ?? path;

    public void Dispose()
    {
        if (_secretFile is not null)
        {
            File.Delete(_secretFile);
        }
    }
}
