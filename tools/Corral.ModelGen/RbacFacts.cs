using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.ModelGen;

/// <summary>
/// The facts of xapi's role-based access control that <c>doc/data/xenapi.json</c> does not carry, read from its IDL
/// (<c>ocaml/idl/datamodel*.ml</c>): the static roles in decreasing order of privilege, the fixed uuid of pool-admin,
/// and the permissions beyond the published messages' own (whose roles xenapi.json gives): messages hidden from the
/// documentation, protected map keys (<c>VM.add_to_other_config/key:folder</c>), HTTP handlers
/// (<c>http/get_vm_rrds</c>) and xapi's extra permissions (<c>task.destroy/any</c>). Checked in as
/// <c>datamodel/xapi-rbac.json</c>.
/// </summary>
public sealed record RbacFacts(string Source, string PoolAdminUuid, IReadOnlyList<RoleFacts> Roles, IReadOnlyList<PermissionFacts> Permissions)
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static RbacFacts Load(string path) =>
        JsonSerializer.Deserialize<RbacFacts>(File.ReadAllText(path), Options) ?? throw new InvalidDataException($"{path} holds no RBAC facts");

    /// <summary>The facts as JSON with one line per role and permission, so that a refresh reads as a short diff.</summary>
    public string ToJson()
    {
        string C<T>(T value) => JsonSerializer.Serialize(value, Options);
        var s = new System.Text.StringBuilder();
        s.Append("{\n  \"source\": ").Append(C(Source)).Append(",\n  \"pool_admin_uuid\": ").Append(C(PoolAdminUuid)).Append(",\n  \"roles\": [\n");
        s.AppendJoin(",\n", Roles.Select(r => "    " + C(r))).Append("\n  ],\n  \"permissions\": [\n");
        s.AppendJoin(",\n", Permissions.Select(p => "    " + C(p)));
        return s.Append("\n  ]\n}\n").ToString();
    }
}

/// <summary>A static role; <see cref="Internal"/> roles are not offered to subjects (client-cert).</summary>
public sealed record RoleFacts(string Name, bool Internal);

/// <summary>
/// A permission and the roles that hold it. <see cref="Kind"/>: <c>message</c> (hidden from the documentation),
/// <c>key</c> (a protected map key of a message), <c>http</c> (an HTTP handler or one of its sub-actions), <c>extra</c>.
/// </summary>
public sealed record PermissionFacts(string Name, string Kind, IReadOnlyList<string> Roles);
