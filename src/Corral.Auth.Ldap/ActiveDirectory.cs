using System.DirectoryServices.Protocols;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Corral.Api.Auth;
using Corral.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static Corral.Auth.Ldap.LdapOperations;

namespace Corral.Auth.Ldap;

/// <summary>
/// Active Directory as the pool's external authentication (<c>auth_type=AD</c>, XenCenter's "Join Domain"), over LDAPS
/// to the domain's controllers. Joining creates the pool's computer account (as <c>net ads join</c> does for xapi's
/// hosts) with a random password that the pool keeps as a secret; the administrator's password is used for the join
/// only and never kept. Subjects are SIDs (<c>S-1-5-21-...</c>) named <c>DOMAIN\name</c>; a login takes
/// <c>DOMAIN\name</c>, <c>name@domain</c> or <c>name</c> and is a bind as the user; a user's groups are AD's own
/// closure of them (<c>tokenGroups</c>, nested groups and the primary group included).
/// </summary>
public sealed class ActiveDirectory(TimeProvider time, DomainControllerLocator locator, IOptions<DirectoryTlsOptions> tls, ILogger<ActiveDirectory> logger)
    : IExternalDirectory
{
    public const string TypeName = "AD";

    private const int InsufficientAccessRights = 50;
    private const int EntryAlreadyExists = 68;
    private const int WorkstationTrustAccount = 0x1000;
    private static readonly EventId Joined = new(1317, "DomainJoined");
    private static readonly EventId Left = new(1318, "DomainLeft");

    public string AuthType => TypeName;

    public IReadOnlyList<string> Problems(DirectorySettings settings) => AdSettings.Problems(settings);

    public async Task<DirectorySettings> JoinAsync(DirectorySettings settings, DirectoryJoin join, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(join);
        if (AdSettings.JoinProblems(settings) is { Count: > 0 } problems)
        {
            throw new DirectoryUnavailableException(string.Join("; ", problems), errorCode: ErrorCodes.PoolAuthEnableFailed);
        }

        var ad = AdSettings.From(settings);
        var name = ad.ComputerName ?? AdSettings.DefaultComputerName(join.PoolUuid);
        var password = MachinePassword();
        var workgroup = await OnControllerAsync(ad, ad.User!, settings.BindPassword!, (connection, ldap) =>
        {
            var netbios = DomainNetbiosName(connection, ad) ?? throw new DirectoryUnavailableException($"{ad.Domain} names no NetBIOS domain (CN=Partitions)");
            SetComputerAccount(connection, ad, name, password);
            return netbios;
        }, cancellationToken);

        var kept = new Dictionary<string, string>(settings.Configuration, StringComparer.Ordinal)
        {
            [AdSettings.WorkgroupKey] = workgroup,
            [AdSettings.JoinedNameKey] = name,
        };
        var joined = settings with { Configuration = kept, BindPassword = password };
        await CheckAsync(joined, cancellationToken);
        logger.LogInformation(Joined, "Joined the domain {Domain} ({Workgroup}) as computer {Computer}", ad.Domain, workgroup, name);
        return joined;
    }

    public async Task LeaveAsync(DirectorySettings settings, IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var ad = AdSettings.From(settings);
        if (config.GetValueOrDefault(AdSettings.UserKey) is not { Length: > 0 } user || config.GetValueOrDefault(AdSettings.PassKey) is not { Length: > 0 } pass
            || ad.ComputerName is not { } name)
        {
            logger.LogInformation(Left, "Left the domain {Domain}; its computer account {Computer} stays (no config:user and config:pass to remove it)", ad.Domain, ad.ComputerName);
            return;
        }

        await OnControllerAsync(ad, user, pass, (connection, _) =>
        {
            try
            {
                connection.SendRequest(new DeleteRequest(ComputerDn(ad, name)), RequestTimeout);
            }
            catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == NoSuchObject)
            {
                // Already gone.
            }
            catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == InsufficientAccessRights)
            {
                throw new DirectoryUnavailableException($"{user} may not remove the computer account {name}", inner: ex, errorCode: ErrorCodes.PoolAuthDisableFailedPermissionDenied);
            }

            return true;
        }, cancellationToken);
        logger.LogInformation(Left, "Left the domain {Domain}; its computer account {Computer} was removed", ad.Domain, name);
    }

    public Task CheckAsync(DirectorySettings settings, CancellationToken cancellationToken) =>
        AsComputerAsync(settings, (connection, ad) => Read(connection, ad.BaseDn) is not null
            ? true : throw new DirectoryUnavailableException($"the domain controller has no entry {ad.BaseDn}"), cancellationToken);

    public async Task<DirectoryUser?> AuthenticateAsync(DirectorySettings settings, string name, string password, CancellationToken cancellationToken)
    {
        if (name.Length == 0 || password.Length == 0)
        {
            return null;
        }

        var ad = AdSettings.From(settings);
        return await AsComputerAsync(settings, (connection, ldap) =>
        {
            if (FindSubject(connection, ad, name, users: true, groups: false) is not { } user)
            {
                return null;
            }

            using (var asUser = Connect(ldap with { BindDn = user.DistinguishedName, BindPassword = password }, new NetworkCredential(user.DistinguishedName, password)))
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

            var sid = Sid(user) ?? throw new DirectoryUnavailableException($"{user.DistinguishedName} has no objectSid");
            return new DirectoryUser(sid, SamName(ad, user), TokenGroups(connection, user.DistinguishedName));
        }, cancellationToken);
    }

    public async Task<string?> FindAsync(DirectorySettings settings, string name, CancellationToken cancellationToken)
    {
        var ad = AdSettings.From(settings);
        return await AsComputerAsync(settings, (connection, _) =>
            FindSubject(connection, ad, name, users: true, groups: true) is { } entry ? Sid(entry) : null, cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, string>?> InformationAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken)
    {
        var ad = AdSettings.From(settings);
        return await AsComputerAsync<IReadOnlyDictionary<string, string>?>(settings, (connection, _) =>
            BySid(connection, ad, identifier) is { } found && Read(connection, found.DistinguishedName) is { } entry
                ? Information(ad, entry, identifier, time.GetUtcNow()) : null, cancellationToken);
    }

    public async Task<IReadOnlyList<string>?> GroupsAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken)
    {
        var ad = AdSettings.From(settings);
        return await AsComputerAsync<IReadOnlyList<string>?>(settings, (connection, _) =>
            BySid(connection, ad, identifier) is { } entry ? TokenGroups(connection, entry.DistinguishedName) : null, cancellationToken);
    }

    /// <summary>xapi's AD subject information: <c>DOMAIN\name</c>, the UPN, the SID, the account's state.</summary>
    private static Dictionary<string, string> Information(AdSettings ad, SearchResultEntry entry, string sid, DateTimeOffset now)
    {
        var group = LdapDirectory.IsGroup(entry);
        var name = SamName(ad, entry);
        var information = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["subject-name"] = name,
            ["subject-sid"] = sid,
            ["subject-is-group"] = group ? "true" : "false",
        };
        foreach (var (attribute, field) in new[] { ("uidNumber", "subject-uid"), ("gidNumber", "subject-gid") })
        {
            if (LdapDirectory.First(entry, attribute) is { } value)
            {
                information[field] = value;
            }
        }

        if (group)
        {
            return information;
        }

        var display = LdapDirectory.First(entry, "displayName");
        var sam = LdapDirectory.First(entry, "sAMAccountName") ?? "";
        information["subject-gecos"] = display ?? LdapDirectory.First(entry, "cn") ?? sam;
        information["subject-displayname"] = display is { Length: > 0 } ? $"{ad.Workgroup}\\{display}" : name;
        information["subject-upn"] = LdapDirectory.First(entry, "userPrincipalName") ?? $"{sam}@{ad.Domain}";
        foreach (var (field, value) in AccountState.Fields(attribute => LdapDirectory.First(entry, attribute), now))
        {
            information[field] = value;
        }

        return information;
    }

    /// <summary>A user or group by any of the names xapi takes: <c>DOMAIN\name</c>, <c>name@domain</c> (a UPN), <c>name</c>.</summary>
    private static SearchResultEntry? FindSubject(LdapConnection connection, AdSettings ad, string name, bool users, bool groups)
    {
        var classes = (users, groups) switch
        {
            (true, true) => "(|(&(objectCategory=person)(objectClass=user))(objectClass=group))",
            (true, false) => "(&(objectCategory=person)(objectClass=user))",
            _ => "(objectClass=group)",
        };
        string filter;
        if (name.Split('\\') is [var domain, var sam])
        {
            if (!string.Equals(domain, ad.Workgroup, StringComparison.OrdinalIgnoreCase) && !string.Equals(domain, ad.Domain, StringComparison.OrdinalIgnoreCase))
            {
                return null; // Another domain: trusts are not followed.
            }

            filter = $"(sAMAccountName={LdapSettings.Escape(sam)})";
        }
        else if (name.Split('@') is [var account, var realm])
        {
            filter = string.Equals(realm, ad.Domain, StringComparison.OrdinalIgnoreCase)
                ? $"(|(userPrincipalName={LdapSettings.Escape(name)})(sAMAccountName={LdapSettings.Escape(account)}))"
                : $"(userPrincipalName={LdapSettings.Escape(name)})";
        }
        else
        {
            filter = $"(sAMAccountName={LdapSettings.Escape(name)})";
        }

        return Search(connection, ad.BaseDn, SearchScope.Subtree, $"(&{classes}{filter})").FirstOrDefault();
    }

    private static SearchResultEntry? BySid(LdapConnection connection, AdSettings ad, string sid) =>
        SecurityIdentifiers.IsSid(sid)
            ? Search(connection, ad.BaseDn, SearchScope.Subtree, $"(&(|(objectClass=user)(objectClass=group))(objectSid={sid}))").FirstOrDefault()
            : null;

    /// <summary>Every group the entry is in, as AD computes it (nested, and the primary group), as SIDs.</summary>
    private static List<string> TokenGroups(LdapConnection connection, string dn)
    {
        var response = (SearchResponse)connection.SendRequest(new SearchRequest(dn, "(objectClass=*)", SearchScope.Base, "tokenGroups") { TimeLimit = RequestTimeout }, RequestTimeout);
        var values = response.Entries.Cast<SearchResultEntry>().FirstOrDefault()?.Attributes["tokenGroups"];
        return values is null ? [] : values.GetValues(typeof(byte[])).Cast<byte[]>().Select(b => SecurityIdentifiers.ToText(b)).OfType<string>().Take(MaxEntries).ToList();
    }

    private static string? Sid(SearchResultEntry entry) =>
        entry.Attributes["objectSid"] is { Count: > 0 } values ? SecurityIdentifiers.ToText((byte[])values.GetValues(typeof(byte[]))[0]) : null;

    private static string SamName(AdSettings ad, SearchResultEntry entry) => $"{ad.Workgroup}\\{LdapDirectory.First(entry, "sAMAccountName")}";

    private static string? DomainNetbiosName(LdapConnection connection, AdSettings ad) =>
        Search(connection, "CN=Partitions,CN=Configuration," + ad.BaseDn, SearchScope.OneLevel, $"(&(nETBIOSName=*)(nCName={LdapSettings.Escape(ad.BaseDn)}))",
            ["nETBIOSName"]).Select(e => LdapDirectory.First(e, "nETBIOSName")).FirstOrDefault();

    private static string ComputerDn(AdSettings ad, string name) => $"CN={name},{ad.ComputerContainer}";

    /// <summary>Creates the computer account, or gives an existing one (a re-join) the new password, enabled.</summary>
    private static void SetComputerAccount(LdapConnection connection, AdSettings ad, string name, string password)
    {
        var dn = ComputerDn(ad, name);
        var quoted = Encoding.Unicode.GetBytes($"\"{password}\"");
        try
        {
            connection.SendRequest(new AddRequest(dn,
                new DirectoryAttribute("objectClass", "computer"),
                new DirectoryAttribute("sAMAccountName", name + "$"),
                new DirectoryAttribute("dNSHostName", $"{name.ToLowerInvariant()}.{ad.Domain}"),
                new DirectoryAttribute("userAccountControl", WorkstationTrustAccount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new DirectoryAttribute("unicodePwd", quoted)), RequestTimeout);
        }
        catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == EntryAlreadyExists)
        {
            connection.SendRequest(new ModifyRequest(dn, DirectoryAttributeOperation.Replace, "unicodePwd", quoted), RequestTimeout);
            connection.SendRequest(new ModifyRequest(dn, DirectoryAttributeOperation.Replace, "userAccountControl",
                WorkstationTrustAccount.ToString(System.Globalization.CultureInfo.InvariantCulture)), RequestTimeout);
        }
        catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == InsufficientAccessRights)
        {
            throw new DirectoryUnavailableException($"{ad.User} may not add computers to {ad.ComputerContainer}", inner: ex,
                errorCode: ErrorCodes.PoolAuthEnableFailedPermissionDenied);
        }
        catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == NoSuchObject)
        {
            throw new DirectoryUnavailableException($"the domain has no {ad.ComputerContainer} (config:{AdSettings.OuKey})", inner: ex,
                errorCode: ErrorCodes.PoolAuthEnableFailedInvalidOu);
        }
    }

    /// <summary>A random password for the computer account: 32 random bytes, in letters, digits and signs AD's complexity rule takes.</summary>
    private static string MachinePassword() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "a1!";

    /// <summary>Runs the work on the first domain controller that answers, bound as the pool's computer account.</summary>
    private Task<T> AsComputerAsync<T>(DirectorySettings settings, Func<LdapConnection, LdapSettings, T> work, CancellationToken cancellationToken)
    {
        var ad = AdSettings.From(settings);
        if (ad.ComputerName is not { } name || ad.Workgroup is not { } workgroup)
        {
            throw new DirectoryUnavailableException($"the pool has not joined {ad.Domain} (pool.enable_external_auth)");
        }

        return OnControllerAsync(ad, $"{workgroup}\\{name}$", settings.BindPassword ?? "", work, cancellationToken);
    }

    /// <summary>Runs the work on the first of the domain's controllers that answers, bound as <paramref name="account"/>.</summary>
    private async Task<T> OnControllerAsync<T>(AdSettings ad, string account, string password, Func<LdapConnection, LdapSettings, T> work,
        CancellationToken cancellationToken)
    {
        var controllers = await locator.FindAsync(ad, cancellationToken);
        DirectoryUnavailableException? last = null;
        foreach (var dc in controllers)
        {
            var ldap = new LdapSettings(dc.Address, dc.Port, Tls: true, ad.BaseDn, account, password, "sAMAccountName") { ServerName = dc.Name, TrustDirectory = tls.Value.Effective };
            try
            {
                // Another controller is the better retry; the last one is tried again as a lone directory is.
                return await RunAsync(ldap, work, logger, cancellationToken, ReferenceEquals(dc, controllers[^1]) ? MaxAttempts : 1);
            }
            catch (DirectoryUnavailableException ex) when (!ex.WrongCredentials && ex.ErrorCode is null && ex.InnerException is LdapException)
            {
                last = ex; // That controller is out of reach: the next.
            }
        }

        throw last ?? new DirectoryUnavailableException($"no domain controller of {ad.Domain} is known");
    }
}
