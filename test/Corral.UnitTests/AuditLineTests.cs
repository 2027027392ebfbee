using Corral.Api.Audit;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The audit log's lines as xapi's rbac_audit writes them, and what is recorded at all.</summary>
public sealed class AuditLineTests
{
    private static readonly DateTime When = new(2026, 12, 5, 4, 30, 12, 345, DateTimeKind.Utc);

    [Fact]
    public void A_line_is_xapis_header_then_the_calls_s_expression()
    {
        var line = AuditLine.Format(When, "lab-host1", "trackid=abc", "LOCAL_SUPERUSER", "root", allowed: true, "OK", http: false, "VM.start",
            [new AuditArgument("vm", "web's VM", "1f0c", "OpaqueRef:1"), new AuditArgument("start_paused", "false", "", "")]);
        Assert.Equal(
            "[20261205T04:30:12.345Z|audit|lab-host1|VM.start|audit] ('trackid=abc' 'LOCAL_SUPERUSER' 'root' 'ALLOWED' 'OK' 'API' 'VM.start' "
            + "(('vm' 'web\\'s VM' '1f0c' 'OpaqueRef:1') ('start_paused' 'false' '' '')))",
            line);
    }

    [Fact]
    public void A_record_stays_on_one_line_whatever_a_name_holds()
    {
        var line = AuditLine.Format(When, "h|1", "", "", "", allowed: false, "ERROR:RBAC_PERMISSION_DENIED", http: false, "VM.destroy",
            [new AuditArgument("self", "two\nlines", "", "OpaqueRef:2")]);
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("[20261205T04:30:12.345Z|audit|h/1|VM.destroy|audit] ('' '' '' 'DENIED' 'ERROR:RBAC_PERMISSION_DENIED'", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("VM.start", true)]
    [InlineData("session.login_with_password", true)]
    [InlineData("VM.get_record", false)]
    [InlineData("pool.get_all_records", false)]
    [InlineData("event.from", false)]
    [InlineData("session.logout", false)]
    [InlineData("http/get_audit_log", true)]
    [InlineData("http/connect_console_ws", true)]
    [InlineData("http/get_rrd_updates", false)]
    [InlineData("pool.audit_log_append", false)]
    public void Calls_that_change_something_are_recorded(string message, bool audited) => Assert.Equal(audited, AuditLine.Audits(message));

    [Fact]
    public void Only_whole_audit_lines_are_well_formed()
    {
        var http = AuditLine.Format(When, "lab-host2", "trackid=abc", "S-1-5-21-1", "rory", allowed: true, "OK", http: true, "http/get_audit_log",
            [new AuditArgument("since", "2026-12-05", "", "")]);
        Assert.Contains("'OK' 'HTTP' 'http/get_audit_log' (('since' '2026-12-05' '' ''))", http, StringComparison.Ordinal);
        Assert.True(AuditLine.IsWellFormed(http));
        Assert.True(AuditLine.IsWellFormed(AuditLine.Format(When, "h", "", "", "", allowed: false, "", http: false, "VM.start", [])));
        Assert.False(AuditLine.IsWellFormed(""));
        Assert.False(AuditLine.IsWellFormed("anything a caller likes"));
        Assert.False(AuditLine.IsWellFormed(http + "\n" + http));
        Assert.False(AuditLine.IsWellFormed(http.Replace("|audit]", "|other]", StringComparison.Ordinal)));
        Assert.False(AuditLine.IsWellFormed(http.Replace("[20261205T04:30:12.345Z", "[yesterday", StringComparison.Ordinal)));
    }

    [Fact]
    public void Passwords_are_never_among_the_values_kept()
    {
        Assert.True(AuditLine.Keeps("session.login_with_password", "uname"));
        Assert.False(AuditLine.Keeps("session.login_with_password", "pwd"));
        Assert.False(AuditLine.Keeps("session.change_password", "new_pwd"));
        Assert.False(AuditLine.Keeps("secret.create", "value"));
        Assert.False(AuditLine.Keeps("pool.enable_external_auth", "config"));
    }

    [Fact]
    public void A_track_id_tells_sessions_apart_without_revealing_them()
    {
        var id = AuditLine.TrackId("OpaqueRef:5e55-10n");
        Assert.StartsWith("trackid=", id, StringComparison.Ordinal);
        Assert.DoesNotContain("5e55", id, StringComparison.Ordinal);
        Assert.Equal(id, AuditLine.TrackId("OpaqueRef:5e55-10n"));
        Assert.NotEqual(id, AuditLine.TrackId("OpaqueRef:other"));
        Assert.Equal("", AuditLine.TrackId(""));
    }

    [Theory]
    [InlineData("2026-12-05T04:30", true)]
    [InlineData("2026-12-05 04:30:12.345Z", true)]
    [InlineData("20261205T04:30:12.346", false)]
    [InlineData("2026-12-05", true)]
    [InlineData("2026-12-06", false)]
    [InlineData("", true)]
    public void Since_takes_iso_8601_or_the_logs_own_timestamps(string since, bool included)
    {
        var line = AuditLine.Format(When, "h", "", "", "", true, "OK", false, "VM.start", []);
        Assert.Equal(included, AuditLine.IsSince(line, AuditLine.NormalizeSince(since)));
    }
}
