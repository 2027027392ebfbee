using System.Collections.Concurrent;
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

    /// <summary>How many times a lookup is tried when the directory could not be reached or answered too late.</summary>
    public const int MaxAttempts = 4;

    /// <summary>How many connections to one directory are open at once from this host; more lookups wait their turn.</summary>
    public const int MaxConnectionsPerDirectory = 8;

    private static readonly TimeSpan RetryBackoff = TimeSpan.FromMilliseconds(500);

    private static readonly EventId Unavailable = new(1313, "DirectoryUnavailable");
    private static readonly EventId Retried = new(1319, "DirectoryLookupRetried");

    // Per directory (host:port), shared by every lookup of this process: logins and subject lookups at once must not
    // open an unbounded number of connections (each a blocked thread, and a TLS handshake with the server).
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new(StringComparer.OrdinalIgnoreCase);

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

    /// <summary>
    /// Runs <paramref name="work"/> on a connection bound as the configured account (or anonymously). A lookup the
    /// directory could not take (<see cref="IsTransient"/>: server down, connect error, client timeout, busy) is tried
    /// again on a new connection, up to <see cref="MaxAttempts"/> times; an answer (a wrong password included) never is.
    /// </summary>
    public static async Task<T> RunAsync<T>(LdapSettings ldap, Func<LdapConnection, LdapSettings, T> work, ILogger logger, CancellationToken cancellationToken,
        int maxAttempts = MaxAttempts)
    {
        var gate = Gates.GetOrAdd($"{ldap.Host}:{ldap.Port}", _ => new SemaphoreSlim(MaxConnectionsPerDirectory));
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await gate.WaitAsync(cancellationToken);
                try
                {
                    return await RunOnceAsync(ldap, work, cancellationToken);
                }
                finally
                {
                    gate.Release();
                }
            }
            catch (Exception ex) when (IsTransient(ex) && attempt < maxAttempts)
            {
                logger.LogInformation(Retried, "the directory at {Host}:{Port} could not be asked ({Error}): trying again ({Attempt} of {MaxAttempts})",
                    ldap.Host, ldap.Port, ex.Message, attempt + 1, maxAttempts);
                await Task.Delay(RetryBackoff * (1 << (attempt - 1)), cancellationToken); // 0.5, 1, 2 s: a restart or a stall rides through
            }
            catch (Exception ex) when (ex is LdapException or DirectoryOperationException or TimeoutException)
            {
                var message = string.Format(CultureInfo.InvariantCulture, "the directory at {0}:{1} could not be asked: {2}{3}", ldap.Host, ldap.Port, ex.Message,
                    ex is LdapException l ? $" (LDAP error {l.ErrorCode})" : "");
                logger.LogWarning(Unavailable, "{Message}", message);
                throw new DirectoryUnavailableException(message, inner: ex);
            }
        }
    }

    /// <summary>The directory did not take the request (rather than answering it): worth another connection.</summary>
    internal static bool IsTransient(Exception ex) => ex switch
    {
        // libldap's own (negative) codes on Linux, the protocol's numbers on Windows.
        LdapException l => l.ErrorCode is ServerDown or ClientTimeout or ConnectError or ServerDownLibldap or ClientTimeoutLibldap or ConnectErrorLibldap,
        DirectoryOperationException d => (int)d.Response.ResultCode is ServerBusy or ServerUnavailable,
        _ => false,
    };

    private const int ServerDown = 81;
    private const int ClientTimeout = 85;
    private const int ConnectError = 91;
    private const int ServerDownLibldap = -1;
    private const int ClientTimeoutLibldap = -5;
    private const int ConnectErrorLibldap = -11;
    private const int ServerBusy = 51;
    private const int ServerUnavailable = 52;

    private static Task<T> RunOnceAsync<T>(LdapSettings ldap, Func<LdapConnection, LdapSettings, T> work, CancellationToken cancellationToken) =>
        // A thread of its own: libldap blocks, and under load the thread pool would be slow to give one (its wait
        // counting against the timeout). The whole lookup is bounded even if libldap's own timeouts are not kept.
        Task.Factory.StartNew(() =>
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
        }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).WaitAsync(RequestTimeout * 3, cancellationToken);
}
