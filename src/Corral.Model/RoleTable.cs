using System.Security.Cryptography;
using System.Text;

namespace Corral.Model;

/// <summary>
/// One of xapi's static roles: a role such as pool-admin, whose <see cref="Subroles"/> are the permissions it holds,
/// or a permission (a leaf with no subroles) named after what it allows, in lower case (<c>vm.start</c>,
/// <c>vm.add_to_other_config/key:folder</c>, <c>http/get_vm_rrds</c>).
/// </summary>
public sealed record StaticRole(string Ref, string Uuid, string NameLabel, string NameDescription, IReadOnlyList<string> Subroles, bool IsInternal)
{
    public bool IsPermission => Subroles.Count == 0;

    /// <summary>The role's record as <c>role.get_record</c> gives it.</summary>
    public Dictionary<string, object?> ToRecord() => new(StringComparer.Ordinal)
    {
        ["uuid"] = Uuid,
        ["name_label"] = NameLabel,
        ["name_description"] = NameDescription,
        ["subroles"] = Subroles.Cast<object?>().ToList(),
        ["is_internal"] = IsInternal,
    };
}

/// <summary>
/// xapi's roles, which are static: not in the pool database, the same in every pool. A permission per message of the
/// datamodel (the roles each message lists) and per permission xapi's IDL adds (<see cref="XenApi.Rbac"/>); the seven
/// roles hold them. References and uuids are xapi's: pool-admin's uuid is fixed (it is the default of
/// <c>subject.roles</c>), every other one is the MD5 digest of the role's or permission's name, read as a uuid, and a
/// role's reference is <c>OpaqueRef:</c> and its uuid. As in xapi, the permissions served are pool-admin's (a
/// permission no role holds, for the local root only, is no role).
/// </summary>
public static class RoleTable
{
    public const string PoolAdmin = "pool-admin";
    public const string PoolOperator = "pool-operator";
    public const string VmPowerAdmin = "vm-power-admin";
    public const string VmAdmin = "vm-admin";
    public const string VmOperator = "vm-operator";
    public const string ReadOnly = "read-only";
    public const string ClientCert = "client-cert";

    /// <summary>Every permission's description, as xapi gives it.</summary>
    public const string PermissionDescription = "A basic permission";

    private static readonly Dictionary<string, string> Descriptions = new(StringComparer.Ordinal)
    {
        [PoolAdmin] = "Full access to every feature and setting of the pool, including the hosts' consoles, subjects, roles and external authentication",
        [PoolOperator] = "Manages the hosts and the pool-wide resources: storage, networks, pools, updates, high availability and workload balancing",
        [VmPowerAdmin] = "Full access to VMs and templates, including where VMs start, their dynamic memory and their snapshots",
        [VmAdmin] = "Manages VMs and templates",
        [VmOperator] = "Uses VMs and their consoles",
        [ClientCert] = "What a client that authenticates with a certificate may do",
        [ReadOnly] = "Logs in and reads the pool's configuration",
    };

    private static readonly Lazy<Table> Built = new(Build);

    /// <summary>Every permission, then the roles, as <c>role.get_all</c> lists them.</summary>
    public static IReadOnlyList<StaticRole> All => Built.Value.All;

    /// <summary>The roles (pool-admin ... read-only and the internal client-cert), most privileged first.</summary>
    public static IReadOnlyList<StaticRole> Roles => Built.Value.Roles;

    public static IReadOnlyList<StaticRole> Permissions => Built.Value.Permissions;

    public static StaticRole? FindByRef(string reference) => Built.Value.ByRef.GetValueOrDefault(reference);

    public static StaticRole? FindByUuid(string uuid) => Built.Value.ByUuid.GetValueOrDefault(uuid);

    public static StaticRole? FindByNameLabel(string nameLabel) => Built.Value.ByName.GetValueOrDefault(nameLabel);

    /// <summary>pool-admin, the default role of a new subject in xapi's datamodel.</summary>
    public static StaticRole PoolAdminRole => FindByNameLabel(PoolAdmin)!;

    /// <summary>
    /// The permissions a role grants: its subroles, followed down to the leaves; a permission grants itself
    /// (<c>role.get_permissions</c>).
    /// </summary>
    public static IReadOnlyList<StaticRole> PermissionsOf(StaticRole role)
    {
        if (role.IsPermission)
        {
            return [role];
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var leaves = new List<StaticRole>();
        foreach (var sub in role.Subroles.Select(FindByRef).OfType<StaticRole>())
        {
            foreach (var leaf in PermissionsOf(sub).Where(l => seen.Add(l.Ref)))
            {
                leaves.Add(leaf);
            }
        }

        return leaves;
    }

    /// <summary>
    /// The roles holding a permission that <paramref name="matches"/>, the permission <paramref name="except"/> itself
    /// left out (<c>role.get_by_permission</c>, <c>role.get_by_permission_name_label</c>).
    /// </summary>
    public static IReadOnlyList<StaticRole> Holding(Func<StaticRole, bool> matches, string? except) =>
        All.Where(r => r.Ref != except && PermissionsOf(r).Any(matches)).ToList();

    /// <summary>
    /// What a session of a subject with these roles may do, as xapi writes it in <c>session.rbac_permissions</c> at
    /// login: each role's name and its permissions' names, once each. Unknown references count for nothing.
    /// </summary>
    public static IReadOnlyList<string> SessionPermissions(IEnumerable<string> roleRefs)
    {
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var role in roleRefs.Select(FindByRef).OfType<StaticRole>())
        {
            foreach (var name in PermissionsOf(role).Select(p => p.NameLabel).Prepend(role.NameLabel).Where(seen.Add))
            {
                names.Add(name);
            }
        }

        return names;
    }

    /// <summary>
    /// The permission a call of the message needs, as xapi's dispatcher works it out: the message's name in lower case
    /// (<c>vm.start</c>) or, for a message some of whose map keys are guarded (<c>VM.add_to_other_config</c> with
    /// <c>key</c> <c>folder</c>), the key's own permission (<c>vm.add_to_other_config/key:folder</c>; a guarded key ending
    /// in <c>*</c> covers every key it starts).
    /// </summary>
    public static string PermissionFor(string wireName, string? key)
    {
        var action = wireName.ToLowerInvariant();
        if (key is not null && GuardedKeys.Value.TryGetValue(action, out var guarded))
        {
            foreach (var pattern in guarded)
            {
                if (pattern.EndsWith('*') ? key.StartsWith(pattern[..^1], StringComparison.Ordinal) : key == pattern)
                {
                    return $"{action}/key:{pattern.ToLowerInvariant()}";
                }
            }
        }

        return action;
    }

    /// <summary>Whether some role holds the permission (a message no role lists is the local superuser's alone).</summary>
    public static bool IsPermission(string name) => FindByNameLabel(name) is { IsPermission: true };

    /// <summary>The names of the roles (not the internal ones) that hold the permission, most privileged first.</summary>
    public static IReadOnlyList<string> RolesHolding(string permission) =>
        Roles.Where(r => !r.IsInternal && PermissionsOf(r).Any(p => p.NameLabel == permission)).Select(r => r.NameLabel).ToList();

    private static readonly Lazy<Dictionary<string, List<string>>> GuardedKeys = new(() =>
        XenApi.Rbac.ExtraPermissions.Select(p => p.Name.Split("/key:", 2)).Where(parts => parts.Length == 2)
            .GroupBy(parts => parts[0].ToLowerInvariant(), StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(parts => parts[1]).ToList(), StringComparer.Ordinal));

    /// <summary>The uuid xapi gives a role or permission: the MD5 digest of its name (as xapi spells it) read as a uuid.</summary>
    public static string UuidOf(string name)
    {
        // Not a security use: this is how xapi derives its static roles' identifiers, which clients may rely on.
#pragma warning disable CA5351
        var hex = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(name)));
#pragma warning restore CA5351
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }

    private sealed record Table(
        IReadOnlyList<StaticRole> All,
        IReadOnlyList<StaticRole> Roles,
        IReadOnlyList<StaticRole> Permissions,
        Dictionary<string, StaticRole> ByRef,
        Dictionary<string, StaticRole> ByUuid,
        Dictionary<string, StaticRole> ByName);

    private static Table Build()
    {
        // Each permission (a message's wire name as xapi spells it, or one of the IDL's extra ones) with its roles.
        var granted = XenApi.AllClasses.SelectMany(c => c.Messages).Where(m => m.Roles.Count > 0)
            .Select(m => (Name: m.WireName, m.Roles))
            .Concat(XenApi.Rbac.ExtraPermissions.Select(p => (p.Name, Roles: (IReadOnlyList<string>)p.Roles)))
            .ToList();
        var permissions = granted.Where(p => p.Roles.Contains(PoolAdmin))
            .Select(p => Permission(p.Name))
            .ToList();
        var permissionByName = granted.Select(p => p.Name).Distinct(StringComparer.Ordinal)
            .ToDictionary(n => n, n => OpaqueRef.Prefix + UuidOf(n), StringComparer.Ordinal);
        var roles = XenApi.Rbac.Roles.Select(role =>
        {
            var uuid = role.Name == PoolAdmin ? XenApi.Rbac.PoolAdminUuid : UuidOf(role.Name);
            var subroles = granted.Where(p => p.Roles.Contains(role.Name)).Select(p => permissionByName[p.Name]).Distinct(StringComparer.Ordinal).ToList();
            return new StaticRole(OpaqueRef.Prefix + uuid, uuid, role.Name, Descriptions.GetValueOrDefault(role.Name, role.Name), subroles, role.IsInternal);
        }).ToList();
        var all = permissions.Concat(roles).ToList();
        return new Table(all, roles, permissions,
            all.ToDictionary(r => r.Ref, StringComparer.Ordinal),
            all.ToDictionary(r => r.Uuid, StringComparer.Ordinal),
            all.ToDictionary(r => r.NameLabel, StringComparer.Ordinal));
    }

    private static StaticRole Permission(string name)
    {
        var uuid = UuidOf(name);
        return new StaticRole(OpaqueRef.Prefix + uuid, uuid, name.ToLowerInvariant(), PermissionDescription, [], IsInternal: true);
    }
}
