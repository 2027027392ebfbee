using System.Globalization;
using Corral.Api.Auth;

namespace Corral.Auth.Ldap;

/// <summary>
/// An Active Directory domain's settings, read from the pool's as xapi's AD plugin keeps them: the service name is the
/// domain's DNS name (<c>corral.lab</c>); the configuration holds <c>user</c> (who joined it, in UPN form), <c>ou</c>
/// (where the pool's computer account is, relative to the domain: <c>OU=Servers</c> or <c>Servers/Hypervisors</c>;
/// <c>CN=Computers</c> by default), <c>netbios-name</c> (the computer account's name), and once joined
/// <c>workgroup</c> (the domain's NetBIOS name) and <c>netbios_name</c>. Corral's own key <c>domain-controllers</c>
/// (<c>host[:port]</c>, comma-separated) names the domain controllers when DNS does not (their SRV records).
/// </summary>
internal sealed record AdSettings(string Domain, string BaseDn, string? User, string? Ou, string? ComputerName, string? Workgroup,
    IReadOnlyList<string> DomainControllers)
{
    public const string UserKey = "user";
    public const string PassKey = "pass";
    public const string OuKey = "ou";
    public const string NetbiosNameKey = "netbios-name";
    public const string JoinedNameKey = "netbios_name";
    public const string WorkgroupKey = "workgroup";
    public const string DomainControllersKey = "domain-controllers";
    public const int LdapsPort = 636;

    public static IReadOnlyList<string> Problems(DirectorySettings settings)
    {
        var problems = new List<string>();
        if (!IsDomainName(settings.ServiceName))
        {
            problems.Add($"service_name ({settings.ServiceName}) must be the domain's DNS name (corral.lab)");
        }

        if (settings.Configuration.GetValueOrDefault(NetbiosNameKey) is { } name && !IsComputerName(name))
        {
            problems.Add($"config:{NetbiosNameKey} ({name}) must be 1-15 letters, digits or '-'");
        }

        foreach (var dc in Split(settings.Configuration.GetValueOrDefault(DomainControllersKey)))
        {
            if (Uri.CheckHostName(HostOf(dc)) == UriHostNameType.Unknown || PortOf(dc) is null)
            {
                problems.Add($"config:{DomainControllersKey} ({dc}) must be host[:port], comma-separated");
            }
        }

        return problems;
    }

    /// <summary>The join's own checks, as xapi's: an account in UPN form and its password.</summary>
    public static IReadOnlyList<string> JoinProblems(DirectorySettings settings)
    {
        var problems = new List<string>(Problems(settings));
        var user = settings.Configuration.GetValueOrDefault(UserKey);
        if (user is not { Length: > 0 } || settings.BindPassword is not { Length: > 0 })
        {
            problems.Add($"enable requires config:{UserKey} and config:{PassKey} (an account that may add computers to the domain)");
        }
        else if (user.Contains('\\', StringComparison.Ordinal))
        {
            problems.Add($"SAM format for user detected in '{user}'. This is not supported, please retry using UPN format");
        }

        return problems;
    }

    public static AdSettings From(DirectorySettings settings)
    {
        if (Problems(settings) is { Count: > 0 } problems)
        {
            throw new DirectoryUnavailableException(string.Join("; ", problems));
        }

        var domain = settings.ServiceName.Trim().TrimEnd('.').ToLowerInvariant();
        var config = settings.Configuration;
        return new AdSettings(domain, string.Join(',', domain.Split('.').Select(p => "DC=" + p)), config.GetValueOrDefault(UserKey),
            config.GetValueOrDefault(OuKey), config.GetValueOrDefault(JoinedNameKey) ?? config.GetValueOrDefault(NetbiosNameKey),
            config.GetValueOrDefault(WorkgroupKey), Split(config.GetValueOrDefault(DomainControllersKey)));
    }

    /// <summary>The container the pool's computer account goes in.</summary>
    public string ComputerContainer
    {
        get
        {
            if (Ou is not { Length: > 0 } ou)
            {
                return "CN=Computers," + BaseDn;
            }

            // xapi's "Servers/Hypervisors" form names OUs from the top down.
            var relative = ou.Contains('=', StringComparison.Ordinal)
                ? ou
                : string.Join(',', ou.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse().Select(p => "OU=" + p));
            return relative.EndsWith(BaseDn, StringComparison.OrdinalIgnoreCase) ? relative : relative + "," + BaseDn;
        }
    }

    /// <summary>The pool's computer account's name: the one configured, or CORRAL- and the pool uuid's first 8 digits.</summary>
    public static string DefaultComputerName(string poolUuid) =>
        "CORRAL-" + new string(poolUuid.Where(char.IsAsciiHexDigit).Take(8).ToArray()).ToUpperInvariant();

    public static string HostOf(string endpoint) => endpoint.LastIndexOf(':') is var colon and > 0 && !endpoint.EndsWith(']') ? endpoint[..colon] : endpoint;

    public static int? PortOf(string endpoint) =>
        HostOf(endpoint).Length == endpoint.Length ? LdapsPort
        : int.TryParse(endpoint[(HostOf(endpoint).Length + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536 ? port : null;

    private static IReadOnlyList<string> Split(string? list) =>
        list?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];

    private static bool IsDomainName(string name) =>
        name.Length is > 2 and < 254 && name.Contains('.', StringComparison.Ordinal) && Uri.CheckHostName(name.TrimEnd('.')) == UriHostNameType.Dns;

    private static bool IsComputerName(string name) => name.Length is > 0 and <= 15 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');
}
