using Corral.Model;

namespace Corral.Api.Sessions;

/// <summary>
/// What a session may call, and who it is: everything for the local superuser (root) and this host's own sessions,
/// else the permissions written in its <c>rbac_permissions</c> at login (the roles of the subjects it logged in as,
/// xapi's RBAC); its subject identifier and user name as the audit log records them (xapi's <c>LOCAL_SUPERUSER</c> and
/// <c>LOCAL_SESSION</c> for those without one).
/// </summary>
public sealed class SessionAccess
{
    public const string LocalSuperuser = "LOCAL_SUPERUSER";
    public const string LocalSession = "LOCAL_SESSION";

    private readonly HashSet<string> _permissions;

    private SessionAccess(bool unrestricted, IEnumerable<string> permissions, string subjectIdentifier, string userName)
    {
        Unrestricted = unrestricted;
        _permissions = new HashSet<string>(permissions, StringComparer.Ordinal);
        PoolAdmin = unrestricted || _permissions.Contains(RoleTable.PoolAdmin);
        SubjectIdentifier = subjectIdentifier;
        UserName = userName;
    }

    /// <summary>A host's own session (host-to-host calls, emergency logins), good on this host only.</summary>
    public static SessionAccess Local { get; } = new(true, [], LocalSession, LocalSession);

    public bool Unrestricted { get; }

    /// <summary>Whether the session holds pool-admin (its permissions name the role, as xapi writes them).</summary>
    public bool PoolAdmin { get; }

    /// <summary>The directory's identifier of the user (<c>auth_user_sid</c>), or <see cref="LocalSuperuser"/>.</summary>
    public string SubjectIdentifier { get; }

    public string UserName { get; }

    public static SessionAccess Of(XenObject session) =>
        session.Get(XenApi.Session.IsLocalSuperuser)
            ? new SessionAccess(true, [], LocalSuperuser, session.Get(XenApi.Session.AuthUserName))
            : new SessionAccess(false, session.Get(XenApi.Session.RbacPermissions), session.Get(XenApi.Session.AuthUserSid), session.Get(XenApi.Session.AuthUserName));

    /// <summary>
    /// Whether a call needing <paramref name="permission"/> is allowed. One that no role holds (a message of Corral's
    /// own, or one xapi keeps for the local superuser) is pool-admin's.
    /// </summary>
    public bool Allows(string permission) =>
        Unrestricted || _permissions.Contains(permission) || (PoolAdmin && !RoleTable.IsPermission(permission));
}
