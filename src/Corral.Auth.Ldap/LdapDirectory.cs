using System.DirectoryServices.Protocols;
using static Corral.Auth.Ldap.LdapOperations;
using System.Globalization;
using System.Net;
using Corral.Api.Auth;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Auth.Ldap;

/// <summary>
/// An LDAP directory (OpenLDAP's slapd, Active Directory) as the pool's external authentication, through
/// System.DirectoryServices.Protocols (OpenLDAP's libldap on Linux). A login is a search for the user (as the configured
/// account, or anonymously) and a bind as that user with the password given; a subject's identifier is its entry's DN;
/// its groups are the groups that list it as a member (<c>member</c>, <c>uniqueMember</c>, a posixGroup's
/// <c>memberUid</c>), and the groups those are in, followed up.
/// </summary>
public sealed class LdapDirectory(TimeProvider time, IOptions<DirectoryTlsOptions> tls, ILogger<LdapDirectory> logger) : IExternalDirectory
{
    public const string TypeName = "LDAP";

    private const int MaxGroups = LdapOperations.MaxEntries;

    public string AuthType => TypeName;

    public IReadOnlyList<string> Problems(DirectorySettings settings) => LdapSettings.Problems(settings);

    public Task CheckAsync(DirectorySettings settings, CancellationToken cancellationToken) =>
        RunAsync(settings, (connection, ldap) =>
        {
            if (Read(connection, ldap.BaseDn) is null)
            {
                throw new DirectoryUnavailableException($"the directory has no entry {ldap.BaseDn} (config:{LdapSettings.BaseDnKey})");
            }

            return true;
        }, cancellationToken);

    public async Task<DirectoryUser?> AuthenticateAsync(DirectorySettings settings, string name, string password, CancellationToken cancellationToken)
    {
        // An LDAP bind with an empty password is an unauthenticated one, which servers accept: never a login.
        if (name.Length == 0 || password.Length == 0)
        {
            return null;
        }

        return await RunAsync(settings, (connection, ldap) =>
        {
            if (FindOne(connection, ldap.BaseDn, ldap.UserFilter(name)) is not { } user)
            {
                return null;
            }

            using (var asUser = Connect(ldap, new NetworkCredential(user.DistinguishedName, password)))
            {
                try
                {
                    asUser.Bind();
                }
                catch (LdapException ex) when (ex.ErrorCode == InvalidCredentials)
                {
                    return null;
                }
            }

            return new DirectoryUser(user.DistinguishedName, name, GroupClosure(connection, ldap, user.DistinguishedName, name));
        }, cancellationToken);
    }

    public Task<string?> FindAsync(DirectorySettings settings, string name, CancellationToken cancellationToken) =>
        RunAsync(settings, (connection, ldap) =>
            (FindOne(connection, ldap.BaseDn, ldap.UserFilter(name)) ?? FindOne(connection, ldap.BaseDn, LdapSettings.GroupFilter(name)))?.DistinguishedName,
            cancellationToken);

    public Task<IReadOnlyDictionary<string, string>?> InformationAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken) =>
        RunAsync<IReadOnlyDictionary<string, string>?>(settings,
            (connection, ldap) => Read(connection, identifier) is { } entry ? Information(entry, ldap, time.GetUtcNow()) : null,
            cancellationToken);

    public Task<IReadOnlyList<string>?> GroupsAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken) =>
        RunAsync<IReadOnlyList<string>?>(settings, (connection, ldap) =>
        {
            if (Read(connection, identifier) is not { } entry)
            {
                return null;
            }

            var login = IsGroup(entry) ? null : First(entry, ldap.UserAttribute);
            return GroupClosure(connection, ldap, entry.DistinguishedName, login);
        }, cancellationToken);

    /// <summary>xapi's subject information fields, from the entry.</summary>
    private static Dictionary<string, string> Information(SearchResultEntry entry, LdapSettings ldap, DateTimeOffset now)
    {
        var group = IsGroup(entry);
        var name = (group ? First(entry, "cn") : First(entry, ldap.UserAttribute)) ?? entry.DistinguishedName;
        var information = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["subject-name"] = name,
            ["subject-displayname"] = First(entry, "displayName") ?? First(entry, "cn") ?? name,
            ["subject-is-group"] = group ? "true" : "false",
            ["subject-sid"] = entry.DistinguishedName,
        };
        if (!group)
        {
            foreach (var (field, value) in AccountState.Fields(attribute => First(entry, attribute), now))
            {
                information[field] = value;
            }
        }

        foreach (var (attribute, field) in new[] { ("uidNumber", "subject-uid"), ("gidNumber", "subject-gid"), ("gecos", "subject-gecos") })
        {
            if (First(entry, attribute) is { } value)
            {
                information[field] = value;
            }
        }

        return information;
    }

    internal static bool IsGroup(SearchResultEntry entry) =>
        entry.Attributes["objectClass"] is { } classes
        && classes.GetValues(typeof(string)).Cast<string>().Any(c => c.Equals("groupOfNames", StringComparison.OrdinalIgnoreCase)
            || c.Equals("groupOfUniqueNames", StringComparison.OrdinalIgnoreCase) || c.Equals("posixGroup", StringComparison.OrdinalIgnoreCase)
            || c.Equals("group", StringComparison.OrdinalIgnoreCase));

    internal static string? First(SearchResultEntry entry, string attribute) =>
        entry.Attributes[attribute] is { Count: > 0 } values ? values.GetValues(typeof(string)).Cast<string>().FirstOrDefault() : null;

    /// <summary>The groups the entry is in, and the groups those are in, followed up (each once).</summary>
    private static List<string> GroupClosure(LdapConnection connection, LdapSettings ldap, string dn, string? loginName)
    {
        var found = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { dn };
        var pending = new Queue<(string Dn, string? Login)>([(dn, loginName)]);
        while (pending.TryDequeue(out var next) && found.Count < MaxGroups)
        {
            foreach (var group in Search(connection, ldap.BaseDn, SearchScope.Subtree, LdapSettings.MemberOfFilter(next.Dn, next.Login)))
            {
                if (seen.Add(group.DistinguishedName))
                {
                    found.Add(group.DistinguishedName);
                    pending.Enqueue((group.DistinguishedName, null));
                }
            }
        }

        return found;
    }

    private Task<T> RunAsync<T>(DirectorySettings settings, Func<LdapConnection, LdapSettings, T> work, CancellationToken cancellationToken) =>
        LdapOperations.RunAsync(LdapSettings.From(settings, tls.Value.Effective), work, logger, cancellationToken);
}
