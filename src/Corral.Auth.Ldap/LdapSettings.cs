using System.Globalization;
using System.Text;
using Corral.Api.Auth;

namespace Corral.Auth.Ldap;

/// <summary>
/// An LDAP directory's settings, read from the pool's: the service name is the directory's URI (<c>ldap://host[:port]</c>
/// or <c>ldaps://</c>), and the configuration holds <c>base-dn</c> (where users and groups are looked for), optionally
/// <c>user</c> (the DN of an account that may search; anonymous without it, its password given as <c>pass</c>) and
/// <c>user-attribute</c> (what a login name is matched against; <c>uid</c>, or <c>sAMAccountName</c> for Active Directory).
/// </summary>
internal sealed record LdapSettings(string Host, int Port, bool Tls, string BaseDn, string? BindDn, string? BindPassword, string UserAttribute)
{
    /// <summary>The name the server's certificate must carry, when <see cref="Host"/> is its address (a domain controller found by DNS).</summary>
    public string? ServerName { get; init; }

    /// <summary>
    /// A directory of the certificates (CAs, or the server's own) that alone are trusted for LDAPS, in place of the
    /// machine's store (<see cref="DirectoryTlsOptions.TrustedCertificatesDirectory"/>); null: the machine's store.
    /// </summary>
    public string? TrustDirectory { get; init; }

    public const string BaseDnKey = "base-dn";
    public const string UserKey = "user";
    public const string PassKey = "pass";
    public const string UserAttributeKey = "user-attribute";

    public static IReadOnlyList<string> Problems(DirectorySettings settings)
    {
        var problems = new List<string>();
        if (!Uri.TryCreate(settings.ServiceName, UriKind.Absolute, out var uri) || uri.Scheme is not ("ldap" or "ldaps") || uri.Host.Length == 0)
        {
            problems.Add($"service_name ({settings.ServiceName}) must be the directory's URI: ldap://host[:port] or ldaps://host[:port]");
        }

        if (settings.Configuration.GetValueOrDefault(BaseDnKey) is not { Length: > 0 })
        {
            problems.Add($"config:{BaseDnKey} must name where the directory's users and groups are (dc=example,dc=com)");
        }

        if (settings.Configuration.GetValueOrDefault(UserAttributeKey) is { } attribute && !IsAttributeName(attribute))
        {
            problems.Add($"config:{UserAttributeKey} ({attribute}) must be an attribute name");
        }

        return problems;
    }

    public static LdapSettings From(DirectorySettings settings, string? trustDirectory = null)
    {
        if (Problems(settings) is { Count: > 0 } problems)
        {
            throw new DirectoryUnavailableException(string.Join("; ", problems));
        }

        var uri = new Uri(settings.ServiceName);
        var tls = uri.Scheme == "ldaps";
        var bindDn = settings.Configuration.GetValueOrDefault(UserKey) is { Length: > 0 } user ? user : null;
        return new LdapSettings(uri.Host, uri.IsDefaultPort || uri.Port < 0 ? (tls ? 636 : 389) : uri.Port, tls, settings.Configuration[BaseDnKey],
            bindDn, bindDn is null ? null : settings.BindPassword, settings.Configuration.GetValueOrDefault(UserAttributeKey) ?? "uid")
        {
            TrustDirectory = trustDirectory,
        };
    }

    private static bool IsAttributeName(string name) =>
        name.Length is > 0 and < 64 && char.IsAsciiLetter(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>A value as an LDAP search filter takes it (RFC 4515): <c>* ( ) \</c> and NUL escaped.</summary>
    public static string Escape(string value)
    {
        var escaped = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            _ = c is '*' or '(' or ')' or '\\' or '\0'
                ? escaped.Append('\\').Append(((int)c).ToString("x2", CultureInfo.InvariantCulture))
                : escaped.Append(c);
        }

        return escaped.ToString();
    }

    /// <summary>Users: people or accounts whose login attribute is the name.</summary>
    public string UserFilter(string name) =>
        $"(&(|(objectClass=person)(objectClass=posixAccount)(objectClass=inetOrgPerson)(objectClass=user))({UserAttribute}={Escape(name)}))";

    public const string GroupClasses = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=group))";

    /// <summary>Groups named so.</summary>
    public static string GroupFilter(string name) => $"(&{GroupClasses}(cn={Escape(name)}))";

    /// <summary>Groups that list the entry as a member (by DN, or a posixGroup by login name).</summary>
    public static string MemberOfFilter(string dn, string? loginName) =>
        $"(&{GroupClasses}(|(member={Escape(dn)})(uniqueMember={Escape(dn)}){(loginName is null ? "" : $"(memberUid={Escape(loginName)})")}))";
}
