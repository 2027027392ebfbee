using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Methods;

/// <summary>
/// <c>subject</c>: the users and groups of an external directory allowed to log in, kept in the pool database as xapi
/// keeps them, with the roles they hold (which logins write into their sessions, and the dispatcher enforces). As in
/// xapi: one subject per identifier (SUBJECT_ALREADY_EXISTS), a new subject holds no role, roles are the static ones
/// (ROLE_NOT_FOUND, ROLE_ALREADY_EXISTS), a pool whose <c>restrictions</c> say <c>restrict_rbac=true</c> cannot change
/// them, and a new subject's <c>other_config</c> is filled from the directory when there is one (one the directory does
/// not know: SUBJECT_CANNOT_BE_RESOLVED). The getters are the generic, database-backed ones.
/// </summary>
public sealed class SubjectMethods(IPoolDatabase database, Auth.ExternalAuth external, ILogger<SubjectMethods> logger) : IApiMethodProvider
{
    private static readonly EventId SubjectChanged = new(1301, "SubjectChanged");

    public void Register(ApiRegistry registry)
    {
        registry.Implement("subject.create", (_, a, ct) => CreateAsync((Dictionary<string, object?>)a[0]!, ct));
        registry.Implement("subject.destroy", async (_, a, ct) =>
        {
            var subject = await database.GetArgumentAsync(XenApi.Subject.ClassName, (string)a[0]!, ct);
            var tx = new PoolTransaction();
            tx.Delete(subject);
            tx.DeleteKey(IdentifierKey(subject.Get(XenApi.Subject.SubjectIdentifier)));
            await database.CommitAsync(tx, ct);
            logger.LogInformation(SubjectChanged, "Subject {Identifier} removed", subject.Get(XenApi.Subject.SubjectIdentifier));
            return null;
        });
        registry.Implement("subject.add_to_roles", (_, a, ct) => ChangeRolesAsync((string)a[0]!, (string)a[1]!, add: true, ct));
        registry.Implement("subject.remove_from_roles", (_, a, ct) => ChangeRolesAsync((string)a[0]!, (string)a[1]!, add: false, ct));
        registry.Implement("subject.get_permissions_name_label", async (_, a, ct) =>
        {
            var subject = await database.GetArgumentAsync(XenApi.Subject.ClassName, (string)a[0]!, ct);
            return subject.Get(XenApi.Subject.Roles).Select(RoleTable.FindByRef).OfType<StaticRole>()
                .SelectMany(RoleTable.PermissionsOf).Select(p => p.NameLabel).Distinct(StringComparer.Ordinal).Cast<object?>().ToList();
        });
    }

    /// <summary>Guards the one-subject-per-identifier rule against two creations racing.</summary>
    private static string IdentifierKey(string subjectIdentifier) => PoolKeys.Auth + "subject-identifiers/" + Uri.EscapeDataString(subjectIdentifier);

    private async Task<object?> CreateAsync(Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        var identifier = Coerce(record, XenApi.Subject.SubjectIdentifier.Name) as string ?? "";
        var otherConfig = Coerce(record, XenApi.Subject.OtherConfig.Name) ?? new Dictionary<string, object?>();
        if (identifier.Length == 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, XenApi.Subject.SubjectIdentifier.Name, identifier);
        }

        if (await external.CurrentAsync(cancellationToken) is { } directory)
        {
            var information = await Auth.ExternalAuth.AskAsync(directory, (d, s) => d.InformationAsync(s, identifier, cancellationToken));
            var merged = XenApi.Subject.OtherConfig.Read(otherConfig).ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
            foreach (var (field, value) in information ?? throw new XenApiException(ErrorCodes.SubjectCannotBeResolved))
            {
                merged[field] = value;
            }

            otherConfig = merged;
        }

        var existing = await database.GetAllAsync(XenApi.Subject.ClassName, cancellationToken);
        if (existing.Any(s => s.Get(XenApi.Subject.SubjectIdentifier) == identifier))
        {
            throw new XenApiException(ErrorCodes.SubjectAlreadyExists);
        }

        // A subject starts with no role, as in a pool licensed for RBAC; one that is not starts as pool-admin.
        List<string> roles = await RbacRestrictedAsync(cancellationToken) ? [RoleTable.PoolAdminRole.Ref] : [];
        var tx = new PoolTransaction();
        var key = IdentifierKey(identifier);
        tx.Require(key, 0);
        tx.PutKey(key, identifier);
        var subject = tx.Create(XenApi.Subject.Schema);
        subject.Set(XenApi.Subject.SubjectIdentifier, identifier);
        subject.Set(XenApi.Subject.OtherConfig, XenApi.Subject.OtherConfig.Read(otherConfig));
        subject.Set(XenApi.Subject.Roles, roles);
        try
        {
            await database.CommitAsync(tx, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            throw new XenApiException(ErrorCodes.SubjectAlreadyExists);
        }

        logger.LogInformation(SubjectChanged, "Subject {Identifier} added as {Ref}", identifier, subject.Ref);
        return subject.Ref;
    }

    private async Task<object?> ChangeRolesAsync(string subjectRef, string roleRef, bool add, CancellationToken cancellationToken)
    {
        if (await RbacRestrictedAsync(cancellationToken))
        {
            throw new XenApiException(ErrorCodes.LicenceRestriction, "RBAC");
        }

        var subject = await database.GetArgumentAsync(XenApi.Subject.ClassName, subjectRef, cancellationToken);
        if (add && RoleTable.FindByRef(roleRef) is null)
        {
            throw new XenApiException(ErrorCodes.RoleNotFound);
        }

        await database.UpdateAsync([(XenApi.Subject.ClassName, subject.Ref)], (objs, tx) =>
        {
            var s = objs[0].Clone();
            var roles = s.Get(XenApi.Subject.Roles).ToList();
            if (add == roles.Contains(roleRef))
            {
                throw new XenApiException(add ? ErrorCodes.RoleAlreadyExists : ErrorCodes.RoleNotFound);
            }

            s.Set(XenApi.Subject.Roles, add ? [.. roles, roleRef] : roles.Where(r => r != roleRef).ToList());
            tx.Update(s);
        }, cancellationToken);
        logger.LogInformation(SubjectChanged, "Subject {Identifier}: role {Role} {Change}", subject.Get(XenApi.Subject.SubjectIdentifier),
            RoleTable.FindByRef(roleRef)?.NameLabel ?? roleRef, add ? "added" : "removed");
        return null;
    }

    /// <summary>True when the pool's licence restrictions forbid RBAC (xapi's <c>restrict_rbac</c>); Corral sets none.</summary>
    private async Task<bool> RbacRestrictedAsync(CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Any(p => p.Get(XenApi.Pool.Restrictions).GetValueOrDefault("restrict_rbac") == "true");

    private static object? Coerce(Dictionary<string, object?> record, string field)
    {
        if (!record.TryGetValue(field, out var value))
        {
            return null;
        }

        try
        {
            return XenApi.Subject.Schema.Get(field).Type.Coerce(value);
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException)
        {
            throw new XenApiException(ErrorCodes.FieldTypeError, field);
        }
    }
}
