using Corral.Storage;

namespace Corral.Storage.Smb;

/// <summary>
/// An SMB share as an ISO SR's <c>device_config:location</c> names it, in XenServer's forms: <c>//server/share</c> or
/// <c>\\server\share</c>, optionally with a directory inside the share.
/// </summary>
public sealed record SmbShare(string Server, string Share, string Directory)
{
    public static bool IsSmb(string location) =>
        location.StartsWith("//", StringComparison.Ordinal) || location.StartsWith(@"\\", StringComparison.Ordinal);

    /// <exception cref="Corral.Model.XenApiException">SM's ISOLocationStringError (225): not a share's location.</exception>
    public static SmbShare Parse(string location)
    {
        ArgumentNullException.ThrowIfNull(location);
        var parts = IsSmb(location) ? location.Replace('\\', '/')[2..].Split('/', StringSplitOptions.RemoveEmptyEntries) : [];
        if (parts.Length < 2 || parts.Any(p => p is "." or ".." || p.Contains('"', StringComparison.Ordinal)))
        {
            throw SrBackend.Failure(225,
                @"Incorrect Location string format. String must be in the format SERVER:PATH for NFS targets, or \\SERVER\PATH for CIFS targets",
                location);
        }

        return new SmbShare(parts[0], parts[1], string.Join('/', parts[2..]));
    }

    public override string ToString() => $"//{Server}/{Share}" + (Directory.Length > 0 ? "/" + Directory : "");
}
