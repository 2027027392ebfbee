using Corral.Api.Auth;
using Corral.Model;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Sessions;

/// <summary>Logins of the external directory's users, as xapi's <c>session.login_with_password</c> makes them.</summary>
public sealed partial class SessionService
{
    private static readonly EventId DirectoryLogin = new(1308, "DirectoryLogin");
    private static readonly EventId DirectoryLoginRefused = new(1309, "DirectoryLoginRefused");
    private static readonly EventId DirectorySessionsEnded = new(1314, "DirectorySessionsEnded");

    /// <summary>
    /// The directory checks the password; the user may log in if it, or a group it is in (nested included), is one of the
    /// pool's subjects (else SESSION_AUTHORIZATION_FAILED), and gets the permissions of those subjects' roles, written in
    /// the session at login as xapi writes them (none: RBAC_PERMISSION_DENIED). Role changes apply at the next login.
    /// </summary>
    private async Task<string> DirectoryLoginAsync(IExternalDirectory directory, DirectorySettings settings, string user, string password, string originator,
        string source, CancellationToken cancellationToken)
    {
        var (found, subjects, permissions) = await AuthorizeDirectoryUserAsync(directory, settings, user, password, source, "session.login_with_password", cancellationToken);
        logger.LogInformation(DirectoryLogin, "{User} ({Identifier}) logged in from {Source} as {Roles}", user, found.Identifier, source,
            string.Join(", ", permissions.Where(p => RoleTable.FindByNameLabel(p) is { IsPermission: false })));
        return await CreateSessionAsync(user, false, subjects[0].Ref, found.Identifier, permissions, originator, cancellationToken);
    }

    /// <summary>
    /// A directory user's password, account state and subjects, as a login checks them (<paramref name="path"/> names
    /// where the password came, for the throttle's log): the user, the subjects letting it in and their permissions, or
    /// the login's refusal (SESSION_AUTHENTICATION_FAILED, SESSION_AUTHORIZATION_FAILED, RBAC_PERMISSION_DENIED).
    /// </summary>
    private async Task<(DirectoryUser Found, IReadOnlyList<XenObject> Subjects, IReadOnlyList<string> Permissions)> AuthorizeDirectoryUserAsync(
        IExternalDirectory directory, DirectorySettings settings, string user, string password, string source, string path, CancellationToken cancellationToken)
    {
        DirectoryUser? found;
        try
        {
            found = await directory.AuthenticateAsync(settings, user, password, cancellationToken);
        }
        catch (DirectoryUnavailableException ex)
        {
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, ex.Message);
        }

        if (found is null)
        {
            throttle.Failed(user, source, path);
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
        }

        throttle.Succeeded(user, source);

        // As xapi does, the account's state is asked as well: a directory may let a disabled, locked or expired account
        // bind (OpenLDAP without its password policy does), and the session revalidation would end it minutes later.
        string? suspended;
        try
        {
            suspended = SubjectSuspension.Of(await directory.InformationAsync(settings, found.Identifier, cancellationToken));
        }
        catch (DirectoryUnavailableException ex)
        {
            throw new XenApiException(ErrorCodes.SessionAuthorizationFailed, user, ex.Message);
        }

        if (suspended is not null)
        {
            var message = $"User {user} (subject_id {found.Identifier}, from {source}) suspended in external directory: {suspended}";
            logger.LogInformation(DirectoryLoginRefused, "{Message}", message);
            throw new XenApiException(ErrorCodes.SessionAuthorizationFailed, user, message);
        }

        var subjects = SubjectsLettingIn(await database.GetAllAsync(XenApi.Subject.ClassName, cancellationToken), found.Identifier,
            found.Groups);
        if (subjects.Count == 0)
        {
            var message = $"Subject {user} (identifier {found.Identifier}, from {source}) has no access rights in this pool";
            logger.LogInformation(DirectoryLoginRefused, "{Message}", message);
            throw new XenApiException(ErrorCodes.SessionAuthorizationFailed, user, message);
        }

        var permissions = RoleTable.SessionPermissions(subjects.SelectMany(s => s.Get(XenApi.Subject.Roles)));
        if (permissions.Count == 0)
        {
            var message = $"Subject {user} (identifier {found.Identifier}) has no roles in this pool";
            logger.LogInformation(DirectoryLoginRefused, "{Message}", message);
            throw new XenApiException(ErrorCodes.RbacPermissionDenied, user, message);
        }

        return (found, subjects, permissions);
    }

    /// <summary>
    /// HTTP Basic credentials on an HTTP handler (<c>rrd_updates</c>), as xapi checks them: by a login's rules, so with
    /// external authentication on a directory user is let in by the directory and the pool's subjects, root and the pool's
    /// own users by their password; throttled as logins are (which refuses with SESSION_AUTHENTICATION_FAILED).
    /// No session is made.
    /// </summary>
    public async Task<bool> BasicCredentialsAllowAsync(string user, string password, string source, string path, CancellationToken cancellationToken)
    {
        if (user == RootUser || await external.CurrentAsync(cancellationToken) is not { } directory)
        {
            return await PasswordMatchesAsync(user, password, source, path, cancellationToken);
        }

        throttle.ThrowIfThrottled(user, source);
        try
        {
            await AuthorizeDirectoryUserAsync(directory.Directory, directory.Settings, user, password, source, path, cancellationToken);
            return true;
        }
        catch (XenApiException ex) when (ex.Code is ErrorCodes.SessionAuthenticationFailed or ErrorCodes.SessionAuthorizationFailed or ErrorCodes.RbacPermissionDenied)
        {
            return false;
        }
    }
}
