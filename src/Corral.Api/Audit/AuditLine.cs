using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Corral.Api.Audit;

/// <summary>One argument of an audited call as xapi's audit log shows it: its name, and for an object its name and uuid.</summary>
public sealed record AuditArgument(string Name, string Value, string Uuid, string Reference);

/// <summary>
/// The audit log's lines as xapi writes them (rbac_audit.ml): the log record's header, then an s-expression of the
/// session's track id (never the session itself, a bearer secret), the subject identifier, the user name,
/// <c>ALLOWED</c> or <c>DENIED</c>, <c>OK</c> or <c>ERROR:&lt;code&gt;</c>, <c>API</c> or <c>HTTP</c>, the call, and
/// its arguments: every object it names (with the object's name and uuid) and the few other values xapi's list keeps
/// (never a password or a secret). Calls that only read (<c>.get</c>) and the event and logout calls are not recorded.
/// </summary>
public static partial class AuditLine
{
    private static readonly HashSet<string> NotAudited = new(StringComparer.Ordinal)
    {
        "session.logout", "session.local_logout", "event.next", "event.from", "host.tickle_heartbeat",
        // xapi leaves out these HTTP actions as spam, and the slaves' forwarded lines are records already.
        "http/get_rrd_updates", "http/rrd_updates", "http/post_remote_db_access", "pool.audit_log_append",
    };

    /// <summary>The values other than objects that xapi's audit keeps, by call (its action_params_whitelist).</summary>
    private static readonly Dictionary<string, string[]> KeptValues = new(StringComparer.Ordinal)
    {
        ["host.create"] = ["hostname", "address", "external_auth_type", "external_auth_service_name", "edition"],
        ["VM.create"] = ["is_a_template", "memory_target", "memory_static_max", "memory_dynamic_max", "memory_dynamic_min", "memory_static_min", "ha_always_run", "ha_restart_priority"],
        ["host.set_address"] = ["value"],
        ["VM.migrate"] = ["dest", "live"],
        ["VM.start_on"] = ["start_paused", "force"],
        ["VM.start"] = ["start_paused", "force"],
        ["pool.create_VLAN"] = ["device", "vLAN"],
        ["pool.join_force"] = ["master_address"],
        ["pool.join"] = ["master_address"],
        ["pool.enable_external_auth"] = ["service_name", "auth_type"],
        ["host.enable_external_auth"] = ["service_name", "auth_type"],
        ["subject.create"] = ["subject_identifier"],
        ["message.create"] = ["name", "body"],
        ["session.login_with_password"] = ["uname"],
        ["session.slave_local_login_with_password"] = ["uname"],
    };

    /// <summary>Whether a call of the message is recorded: those that change something, as xapi decides it.</summary>
    public static bool Audits(string message) => !message.Contains(".get", StringComparison.Ordinal) && !NotAudited.Contains(message);

    /// <summary>Whether the parameter's value (not an object) is kept for this message.</summary>
    public static bool Keeps(string message, string parameter) => KeptValues.TryGetValue(message, out var kept) && kept.Contains(parameter, StringComparer.Ordinal);

    /// <summary>A session's track id: a digest that tells one session's calls apart without revealing the session.</summary>
    public static string TrackId(string sessionRef) =>
        sessionRef.Length == 0 ? "" : "trackid=" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sessionRef)))[..32];

    /// <summary>The line's timestamp as xapi's log writes it, which <c>since</c> is compared with: <c>20261205T04:30:12.345Z</c>.</summary>
    public static string Timestamp(DateTime utc) => utc.ToString("yyyyMMdd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string Format(DateTime utc, string host, string trackId, string subjectIdentifier, string userName, bool allowed, string outcome, bool http,
        string action, IReadOnlyList<AuditArgument> arguments)
    {
        var line = new StringBuilder();
        line.Append('[').Append(Timestamp(utc)).Append("|audit|").Append(Header(host)).Append('|').Append(Header(action)).Append("|audit] (");
        line.AppendJoin(' ', new[] { trackId, subjectIdentifier, userName, allowed ? "ALLOWED" : "DENIED", outcome, http ? "HTTP" : "API", action }.Select(Quote));
        line.Append(" (");
        line.AppendJoin(' ', arguments.Select(a => $"({Quote(a.Name)} {Quote(a.Value)} {Quote(a.Uuid)} {Quote(a.Reference)})"));
        return line.Append("))").ToString();
    }

    /// <summary>
    /// Whether <paramref name="line"/> is one audit line as <see cref="Format"/> writes them: the header with its
    /// timestamp and <c>|audit|</c>, an s-expression after it, no line break.
    /// </summary>
    public static bool IsWellFormed(string line) =>
        WellFormed().IsMatch(line) && !line.Contains('\n', StringComparison.Ordinal) && !line.Contains('\r', StringComparison.Ordinal);

    [GeneratedRegex(@"^\[\d{8}T\d\d:\d\d:\d\d\.\d{3}Z\|audit\|[^|\n]*\|[^|\n]*\|audit\] \('.*\)\)$", RegexOptions.CultureInvariant)]
    private static partial Regex WellFormed();

    /// <summary>
    /// The lines' timestamp a <c>since</c> asks for, as xapi reads it (ISO 8601 or the log's own form, dashes and the
    /// final Z dropped, a space for the T): <c>2026-12-05T04:30</c> and <c>20261205T04:30:12.345</c> both work.
    /// </summary>
    public static string NormalizeSince(string since) =>
        new string(since.Trim().Where(c => c is not ('-' or 'Z')).ToArray()).Replace(' ', 'T');

    /// <summary>Whether the line is at or after <paramref name="since"/> (normalized); every line when it is empty.</summary>
    public static bool IsSince(string line, string since)
    {
        if (since.Length == 0)
        {
            return true;
        }

        var start = line.IndexOf('[', StringComparison.Ordinal) + 1;
        var stamp = line.Length >= start + 21 ? line.Substring(start, 21) : "";
        return string.CompareOrdinal(stamp, since.Length > 21 ? since[..21] : since) >= 0;
    }

    private static string Quote(string value) => "'" + Clean(value).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    /// <summary>One line per record: no line breaks, whatever a name holds.</summary>
    private static string Clean(string value) => value.Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>The header's fields are split on '|'.</summary>
    private static string Header(string value) => Clean(value).Replace('|', '/');
}
