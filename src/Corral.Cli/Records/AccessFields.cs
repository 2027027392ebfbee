namespace Corral.Cli.Records;

/// <summary>
/// The parameters of who may do what and what the pool tells them: messages, subjects and roles, secrets, callers and
/// their rate limits, in the order and spelling of xapi's records.ml.
/// </summary>
public static class AccessFields
{
    public static IReadOnlyList<XeField> Message()
    {
        var b = new FieldBuilder("message");
        return
        [
            b.Uuid(),
            b.Str("name", "name"),
            b.Int("priority", "priority"),
            b.Str("class", "cls"),
            b.Str("obj-uuid", "obj_uuid"),
            b.Date("timestamp", "timestamp"),
            b.Str("body", "body"),
        ];
    }

    public static IReadOnlyList<XeField> Subject()
    {
        var b = new FieldBuilder("subject");
        return
        [
            b.Uuid(),
            b.Str("subject-identifier", "subject_identifier"),
            b.Map("other-config", "other_config"),
            b.RefsNames("roles", "roles", "role"),
        ];
    }

    public static IReadOnlyList<XeField> Role()
    {
        var b = new FieldBuilder("role");
        return
        [
            b.Uuid(),
            b.Str("name", "name_label"),
            b.Str("description", "name_description"),
        ];
    }

    /// <summary>The roles xe lists: those that group permissions (<c>subroles&lt;&gt;[]</c>), not the permissions.</summary>
    public static bool IsListedRole(XenRecord role) => role.Strings("subroles").Count > 0;

    public static IReadOnlyList<XeField> Secret()
    {
        var b = new FieldBuilder("secret");
        return
        [
            b.Uuid(),
            b.Str("value", "value").Rw(b.SetString("value")),
        ];
    }

    public static IReadOnlyList<XeField> Caller()
    {
        var b = new FieldBuilder("Caller");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Str("user-agent", "user_agent"),
            b.Str("client-ip", "client_ip"),
            b.Date("last-access", "last_access"),
            b.Strings("groups", "groups").Rw(b.SetRw("groups", addMethod: "Caller.add_group", removeMethod: "Caller.remove_group")),
            b.Str("rate-limit", "rate_limit"),
        ];
    }

    public static IReadOnlyList<XeField> RateLimit()
    {
        var b = new FieldBuilder("Rate_limit");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Strings("callers", "callers"),
            b.Float("burst-size", "burst_size").Rw(b.SetFloat("burst_size", "burst-size")),
            b.Float("fill-rate", "fill_rate").Rw(b.SetFloat("fill_rate", "fill-rate")),
        ];
    }
}
