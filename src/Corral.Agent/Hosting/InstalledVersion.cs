using System.Text.RegularExpressions;
using Corral.Model;

namespace Corral.Agent.Hosting;

/// <summary>
/// The version of Corral this agent runs as installed, which the host reports (<c>software_version:corral_version</c>)
/// and a rolling upgrade compares: the Debian package's version, in <c>/usr/lib/corral/version</c> beside the
/// agent's directory (as XenServer's xapi reads its build from <c>/etc/xensource-inventory</c>), with the source
/// revision of the build after a '+'. An agent not run from the package (a developer's build, the tests' own hosts)
/// reports its assembly's version.
/// </summary>
public static partial class InstalledVersion
{
    /// <summary>The file the package installs, relative to the agent's own directory (/usr/lib/corral/agent/).</summary>
    public const string RelativePath = "../version";

    /// <summary>This agent's, read once.</summary>
    public static string Current => LazyCurrent.Value;

    private static readonly Lazy<string> LazyCurrent = new(() => Read(AppContext.BaseDirectory));

    public static string Read(string agentDirectory)
    {
        var path = Path.GetFullPath(Path.Combine(agentDirectory, RelativePath));
        var installed = File.Exists(path) ? File.ReadAllText(path).Trim() : "";
        if (!PackageVersion().IsMatch(installed))
        {
            return XenServerVersion.CorralVersion;
        }

        return XenServerVersion.SourceRevision.Length > 0 ? $"{installed}+{XenServerVersion.SourceRevision}" : installed;
    }

    /// <summary>What packaging/build-deb writes: the release and the build, dotted numbers.</summary>
    [GeneratedRegex(@"^[0-9]+(\.[0-9]+){1,3}$")]
    private static partial Regex PackageVersion();
}
