using System.DirectoryServices.Protocols;
using System.Globalization;
using System.Net;
using Corral.Api.Auth;
using Microsoft.Extensions.Logging;

namespace Corral.Auth.Ldap;

/// <summary>The LDAP operations both directories (<see cref="LdapDirectory"/>, <see cref="ActiveDirectory"/>) use.</summary>
internal static class LdapOperations
{
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How many entries a search returns (and a subject's group closure holds) before it is cut short.</summary>
    public const int MaxEntries = 256;

    public const int InvalidCredentials = 49;
    public const int NoSuchObject = 32;

    private static readonly EventId Unavailable = new(1313, "DirectoryUnavailable");

    public static readonly string[] EntryAttributes =
        ["objectClass", "uid", "cn", "displayName", "uidNumber", "gidNumber", "gecos", "sAMAccountName", "userPrincipalName", "objectSid"];

    /// <summary>A read of one entry also asks for the account's state (AD computes its flag only on such a read).</summary>
    public static readonly string[] EntryAndAccountAttributes = [.. EntryAttributes, .. AccountState.Attributes];

    public static SearchResultEntry? FindOne(LdapConnection connection, string baseDn, string filter) =>
        Search(connection, baseDn, SearchScope.Subtree, filter).FirstOrDefault();

    public static SearchResultEntry? Read(LdapConnection connection, string dn)
    {
        try
        {
            return Search(connection, dn, SearchScope.Base, "(objectClass=*)", EntryAndAccountAttributes).FirstOrDefault();
        }
        catch (DirectoryOperationException ex) when ((int)ex.Response.ResultCode == NoSuchObject)
        {
            return null;
        }
    }

    public static IEnumerable<SearchResultEntry> Search(LdapConnection connection, string baseDn, SearchScope scope, string filter, string[]? attributes = null)
    {
        var request = new SearchRequest(baseDn, filter, scope, attributes ?? EntryAttributes) { SizeLimit = MaxEntries, TimeLimit = RequestTimeout };
        var response = (SearchResponse)connection.SendRequest(request, RequestTimeout);
        return response.Entries.Cast<SearchResultEntry>().ToList();
    }

    public static LdapConnection Connect(LdapSettings ldap, NetworkCredential? credential)
    {
        var connection = new LdapConnection(new LdapDirectoryIdentifier(ldap.Host, ldap.Port), credential,
            credential is null ? System.DirectoryServices.Protocols.AuthType.Anonymous : System.DirectoryServices.Protocols.AuthType.Basic)
        {
            Timeout = RequestTimeout,
        };
        connection.SessionOptions.ProtocolVersion = 3;
        connection.SessionOptions.ReferralChasing = ReferralChasingOptions.None;
        if (ldap.Tls)
        {
            connection.SessionOptions.SecureSocketLayer = true;
            if (ldap.TrustDirectory is { } trusted && !OperatingSystem.IsWindows())
            {
                // Only the certificates there are trusted for this connection (libldap: its own TLS context).
                connection.SessionOptions.TrustedCertificatesDirectory = trusted;
                connection.SessionOptions.StartNewTlsSessionContext();
            }
        }

        return connection;
    }

    /// <summary>Runs <paramref name="work"/> on a connection bound as the configured account (or anonymously).</summary>
    public static async Task<T> RunAsync<T>(LdapSettings ldap, Func<LdapConnection, LdapSettings, T> work, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(() =>
            {
                using var connection = Connect(ldap, ldap.BindDn is null ? null : new NetworkCredential(ldap.BindDn, ldap.BindPassword ?? ""));
                try
                {
                    connection.Bind();
                }
                catch (LdapException ex) when (ex.ErrorCode == InvalidCredentials)
                {
                    throw new DirectoryUnavailableException($"the directory refused the account {ldap.BindDn} (config:{LdapSettings.UserKey}, config:{LdapSettings.PassKey})",
                        wrongCredentials: true, ex);
                }

                return work(connection, ldap);
            }, cancellationToken).WaitAsync(RequestTimeout * 3, cancellationToken);
        }
        catch (Exception ex) when (ex is LdapException or DirectoryOperationException or TimeoutException)
        {
            var message = string.Format(CultureInfo.InvariantCulture, "the directory at {0}:{1} could not be asked: {2}", ldap.Host, ldap.Port, ex.Message);
            logger.LogWarning(Unavailable, "{Message}", message);
            throw new DirectoryUnavailableException(message, inner: ex);
        }
    }
}
