using Corral.Model;

namespace Corral.Api.Sessions;

public sealed class ApiOptions
{
    /// <summary>This host's reference (sessions record where they were made).</summary>
    public string HostRef { get; set; } = OpaqueRef.Null;

    /// <summary>A session unused this long is closed, as xapi closes idle sessions.</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(24);

    /// <summary>PBKDF2 iterations of a new password hash: OWASP's 600,000 (about 0.4 s of a core here, once per login per 10 minutes).</summary>
    public int PasswordHashIterations { get; set; } = PasswordHasher.RecommendedIterations;

    /// <summary>The HTTPS port other hosts serve the XenAPI on (the pool's hosts all use the same), for calls between hosts.</summary>
    public int PeerPort { get; set; } = 443;

    /// <summary>Where this host keeps its local copy of the pool's credentials (none if empty).</summary>
    public string StateDirectory { get; set; } = "";

    /// <summary>How long a sync call waits for its task before giving up on waiting (the task itself goes on).</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The largest XML-RPC or JSON-RPC request body read for one call; a larger one is refused with HTTP 413 before any
    /// of it is parsed. xapi's own limit (<c>http_limit_max_rpc_size</c>) is 300 KiB.
    /// </summary>
    public int MaxRpcRequestBytes { get; set; } = 300 * 1024;

    /// <summary>
    /// How deeply a request's XML elements (XML-RPC) or JSON values (JSON-RPC) may nest; deeper is refused with
    /// <c>XMLRPC_UNMARSHAL_FAILURE</c> or a JSON-RPC parse error. A XenAPI call's deepest parameter (a map of maps) needs
    /// about a dozen XML elements.
    /// </summary>
    public int MaxRpcNesting { get; set; } = 64;

    /// <summary>Failed password checks for one user after which its logins are refused until one is forgiven (<see cref="LoginThrottle"/>).</summary>
    public int LoginFailuresPerUser { get; set; } = 5;

    /// <summary>Failed password checks from one source address after which its logins are refused until one is forgiven.</summary>
    public int LoginFailuresPerSource { get; set; } = 20;

    /// <summary>How long until one failed password check is forgiven, per user and per source.</summary>
    public TimeSpan LoginFailureForgivenAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a directory user's session goes before the directory is asked again whether the user may still have it
    /// (account disabled, locked or expired, gone, or no longer in a subject): xapi's 30 minutes, each session up to a
    /// tenth more so that the questions are spread (<see cref="DirectorySessionRevalidation"/>).
    /// </summary>
    public TimeSpan ExternalSessionLifespan { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How often the master looks for directory users' sessions due for revalidation: xapi's <c>session_revalidation_interval</c>.</summary>
    public TimeSpan ExternalSessionRevalidateEvery { get; set; } = TimeSpan.FromMinutes(5);
}
