using Corral.Model;

namespace Corral.Api.Sessions;

/// <summary>
/// What a session may call: everything for the local superuser (root) and this host's own sessions, else the
/// permissions written in its <c>rbac_permissions</c> at login (the roles of the subjects it logged in as, xapi's RBAC).
/// </summary>
public sealed class SessionAccess
{
    private readonly HashSet<string> _permissions;

    private SessionAccess(bool unrestricted, IEnumerable<string> permissions)
    {
        Unrestricted = unrestricted;
        _permissions = new HashSet<string>(permissions, StringComparer.Ordinal);
        PoolAdmin = unrestricted || _permissions.Contains(RoleTable.PoolAdmin);
    }

    /// <summary>The local superuser's, or a host's own.</summary>
    public static SessionAccess Full { get; } = new(true, []);

    public bool Unrestricted { get; }

    /// <summary>Whether the session holds pool-admin (its permissions name the role, as xapi writes them).</summary>
    public bool PoolAdmin { get; }

    public static SessionAccess Of(XenObject session) =>
        session.Get(XenApi.Session.IsLocalSuperuser) ? Full : new SessionAccess(false, session.Get(XenApi.Session.RbacPermissions));

    /// <summary>
    /// Whether a call needing <paramref name="permission"/> is allowed. One that no role holds (a message of Corral's
    /// own, or one xapi keeps for the local superuser) is pool-admin's.
    /// </summary>
    public bool Allows(string permission) =>
        Unrestricted || _permissions.Contains(permission) || (PoolAdmin && !RoleTable.IsPermission(permission));
}
