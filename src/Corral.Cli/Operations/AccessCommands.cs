using System.Globalization;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// Who may use the pool and what it tells them (cli_operations.ml): subject-add/-remove, subject-role-add/-remove,
/// user-password-change, message-create/-destroy, secret-create/-destroy.
/// </summary>
public static class AccessCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("subject-add", ["subject-name"], [], "Add a subject to the list of subjects that can access the pool", CommandFlags.None, SubjectAddAsync));
        r.Add(new("subject-remove", ["subject-uuid"], [], "Remove a subject from the list of subjects that can access the pool", CommandFlags.None,
            async (c, ct) =>
            {
                var subject = await c.CallForStringAsync("subject.get_by_uuid", ct, c.Params.Required("subject-uuid"));
                await c.CallAsync("subject.destroy", ct, subject);
            }));
        r.Add(new("subject-role-add", ["uuid"], ["role-name", "role-uuid"], "Add a role to a subject", CommandFlags.None,
            (c, ct) => SubjectRoleAsync(c, "subject.add_to_roles", ct)));
        r.Add(new("subject-role-remove", ["uuid"], ["role-name", "role-uuid"], "Remove a role from a subject", CommandFlags.None,
            (c, ct) => SubjectRoleAsync(c, "subject.remove_from_roles", ct)));
        r.Add(new("user-password-change", ["new"], ["old"], "Change a user's login password.", CommandFlags.None,
            (c, ct) => c.CallAsync("session.change_password", ct, c.Params.Get("old") ?? "", c.Params.Required("new"))));
        r.Add(new("message-create", ["name", "priority", "body"], ["vm-uuid", "host-uuid", "sr-uuid", "pool-uuid"],
            "Create a message associated with a particular API object. Note exactly one of the optional parameters must be supplied.",
            CommandFlags.None, MessageCreateAsync));
        r.Add(new("message-destroy", [], ["uuid", "uuids"], "Destroy one existing message or many", CommandFlags.None, MessageDestroyAsync));
        r.Add(new("secret-create", ["value"], [], "Create a secret", CommandFlags.None, async (c, ct) =>
        {
            var secret = await c.CallForStringAsync("secret.create", ct, new Dictionary<string, object?>
            {
                ["value"] = c.Params.Required("value"),
                ["other_config"] = c.Params.MapOf("other-config"),
            });
            c.Printer.Line(await c.CallForStringAsync("secret.get_uuid", ct, secret));
        }));
        r.Add(new("secret-destroy", ["uuid"], [], "Destroy a secret", CommandFlags.None, (c, ct) => StorageCommands.OnUuidAsync(c, "secret", "secret.destroy", ct)));
        r.Add(new("pool-enable-external-auth", ["auth-type", "service-name"], ["uuid", "config:"],
            "Enables external authentication in all the hosts in a pool. Note that some values of auth-type will require particular config: values.",
            CommandFlags.None, async (c, ct) => await c.CallAsync("pool.enable_external_auth", ct, await PoolAsync(c, ct), c.Params.MapOf("config"),
                c.Params.Required("service-name"), c.Params.Required("auth-type"))));
        foreach (var (command, deprecated) in new[] { ("pool-install-ca-certificate", false), ("pool-certificate-install", true) })
        {
            r.Add(new(command, ["filename"], [], deprecated ? "Install a TLS CA certificate, pool-wide. Deprecated: use pool-install-ca-certificate" : "Install a TLS CA certificate, pool-wide.",
                CommandFlags.None, async (c, ct) =>
                {
                    var path = c.Params.Required("filename");
                    await c.CallAsync("pool.install_ca_certificate", ct, Path.GetFileName(path), await File.ReadAllTextAsync(path, ct));
                }));
        }

        foreach (var (command, deprecated) in new[] { ("pool-uninstall-ca-certificate", false), ("pool-certificate-uninstall", true) })
        {
            r.Add(new(command, ["name"], ["force"], deprecated ? "Uninstall a pool-wide TLS CA certificate. Deprecated: use pool-uninstall-ca-certificate" : "Uninstall a pool-wide TLS CA certificate.",
                CommandFlags.None, async (c, ct) => await c.CallAsync("pool.uninstall_ca_certificate", ct, c.Params.Required("name"))));
        }

        r.Add(new("pool-certificate-list", [], [], "List the names of all installed TLS CA certificates.", CommandFlags.None, async (c, ct) =>
        {
            foreach (var name in XenValue.AsStrings(await c.CallAsync("pool.certificate_list", ct)))
            {
                c.Printer.Line(name);
            }
        }));
        r.Add(new("audit-log-get", ["filename"], ["since"], "Write the audit log of the pool to <filename>", CommandFlags.None, AuditLogGetAsync));
        r.Add(new("pool-disable-external-auth", [], ["uuid", "config:"], "Disables external authentication in all the hosts in a pool", CommandFlags.None,
            async (c, ct) => await c.CallAsync("pool.disable_external_auth", ct, await PoolAsync(c, ct), c.Params.MapOf("config"))));
    }

    /// <summary>
    /// xe's audit-log-get: the host's <c>/audit_log</c> (the pool master's, where the pool's calls go), from
    /// <c>since</c> on (cut to 255 characters, as xe does), written to the file.
    /// </summary>
    private static async Task AuditLogGetAsync(CommandContext c, CancellationToken ct)
    {
        var since = c.Params.Get("since") ?? "";
        since = since.Length > 255 ? since[..255] : since;
        var query = $"/audit_log?session_id={Uri.EscapeDataString(c.Session.Reference)}" + (since.Length > 0 ? $"&since={Uri.EscapeDataString(since)}" : "");
        var path = c.Params.Required("filename");
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        await c.Session.Client.GetAsync(query, file, ct);
    }

    /// <summary>The pool named by <c>uuid</c>, else the pool (there is one), as xe's get_pool_with_default.</summary>
    private static async Task<string> PoolAsync(CommandContext c, CancellationToken ct) =>
        c.Params.Get("uuid") is { } uuid
            ? await c.CallForStringAsync("pool.get_by_uuid", ct, uuid)
            : XenValue.AsStrings(await c.CallAsync("pool.get_all", ct))[0];

    /// <summary>
    /// xe's subject-add: the name resolved to an identifier by the pool's directory (<c>auth.get_subject_identifier</c>),
    /// then <c>subject.create</c>; prints the new subject's uuid.
    /// </summary>
    private static async Task SubjectAddAsync(CommandContext c, CancellationToken ct)
    {
        var identifier = await c.CallForStringAsync("auth.get_subject_identifier", ct, c.Params.Required("subject-name"));
        var subject = await c.CallForStringAsync("subject.create", ct, new Dictionary<string, object?>
        {
            ["subject_identifier"] = identifier,
            ["other_config"] = new Dictionary<string, string>(),
        });
        c.Printer.Line(await c.CallForStringAsync("subject.get_uuid", ct, subject));
    }

    /// <summary>
    /// xe's subject-role-add / -remove: the role by role-uuid, or by role-name (the null reference when no role has
    /// that name, which the server then refuses), never both.
    /// </summary>
    private static async Task SubjectRoleAsync(CommandContext c, string method, CancellationToken ct)
    {
        var roleUuid = c.Params.Get("role-uuid") ?? "";
        var roleName = c.Params.Get("role-name") ?? "";
        if (roleUuid.Length == 0 && roleName.Length == 0)
        {
            throw new XeFailure("Required parameter not found: role-uuid or role-name");
        }

        if (roleUuid.Length > 0 && roleName.Length > 0)
        {
            throw new XeFailure("Parameters role-uuid and role-name cannot be used together");
        }

        string role;
        if (roleUuid.Length > 0)
        {
            role = await c.CallForStringAsync("role.get_by_uuid", ct, roleUuid);
        }
        else
        {
            var named = XenValue.AsStrings(await c.CallAsync("role.get_by_name_label", ct, roleName));
            role = named.Count > 0 ? named[0] : OpaqueRef.Null;
        }

        var subject = await c.CallForStringAsync("subject.get_by_uuid", ct, c.Params.Required("uuid"));
        await c.CallAsync(method, ct, subject, role);
    }

    /// <summary>
    /// xe's message-create: <c>message.create(name, priority, cls, obj_uuid, body)</c>, the object named by the first
    /// of vm-uuid, pool-uuid, sr-uuid, host-uuid given.
    /// </summary>
    private static async Task MessageCreateAsync(CommandContext c, CancellationToken ct)
    {
        var body = c.Params.Required("body");
        if (!long.TryParse(c.Params.Required("priority"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var priority))
        {
            throw new XeFailure("Priority field should be an integer");
        }

        var name = c.Params.Required("name");
        (string Uuid, string Cls) target =
            c.Params.Get("vm-uuid") is { } vm ? (vm, "VM")
            : c.Params.Get("pool-uuid") is { } pool ? (pool, "Pool")
            : c.Params.Get("sr-uuid") is { } sr ? (sr, "SR")
            : c.Params.Get("host-uuid") is { } host ? (host, "Host")
            : throw new XeFailure("Need one of: vm-uuid, host-uuid, sr-uuid or pool-uuid");
        await c.CallAsync("message.create", ct, name, priority, target.Cls, target.Uuid, body);
    }

    /// <summary>xe's message-destroy: uuid=, or uuids= a comma-separated list, all destroyed in one <c>message.destroy_many</c>.</summary>
    private static async Task MessageDestroyAsync(CommandContext c, CancellationToken ct)
    {
        var uuids = (c.Params.Get("uuid"), c.Params.Get("uuids")) switch
        {
            ({ } one, null) => [one],
            (null, { } many) => many.Split(','),
            (not null, not null) => throw new XeFailure("Ambiguous arguments; need one of uuid, uuids"),
            _ => throw new XeFailure("Need one of uuid, uuids"),
        };
        var messages = new List<object?>();
        foreach (var uuid in uuids)
        {
            messages.Add(await c.CallForStringAsync("message.get_by_uuid", ct, uuid));
        }

        await c.CallAsync("message.destroy_many", ct, messages);
    }
}
