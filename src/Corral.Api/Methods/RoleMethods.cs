using Corral.Api.Dispatch;
using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// The <c>role</c> class, answered from xapi's static role table (<see cref="RoleTable"/>) as xapi answers it: roles
/// are in no database and send no events. A reference or uuid the table does not know is HANDLE_INVALID or
/// UUID_INVALID; a name it does not know finds nothing. Replaces the generic, database-backed messages of the class.
/// </summary>
public sealed class RoleMethods : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("role.get_all", (_, _, _) => Done(RoleTable.All.Select(r => (object?)r.Ref).ToList()));
        registry.Implement("role.get_all_records", (_, _, _) => Done(RoleTable.All.ToDictionary(r => r.Ref, r => (object?)r.ToRecord(), StringComparer.Ordinal)));
        registry.Implement("role.get_record", (_, a, _) => Done(Get(a[0]).ToRecord()));
        registry.Implement("role.get_by_uuid", (_, a, _) =>
            Done((RoleTable.FindByUuid((string)a[0]!) ?? throw XenApiException.UuidInvalid(XenApi.Role.ClassName, (string)a[0]!)).Ref));
        registry.Implement("role.get_by_name_label", (_, a, _) =>
            Done(RoleTable.FindByNameLabel((string)a[0]!) is { } role ? new List<object?> { role.Ref } : new List<object?>()));
        registry.Implement("role.get_uuid", (_, a, _) => Done(Get(a[0]).Uuid));
        registry.Implement("role.get_name_label", (_, a, _) => Done(Get(a[0]).NameLabel));
        registry.Implement("role.get_name_description", (_, a, _) => Done(Get(a[0]).NameDescription));
        registry.Implement("role.get_subroles", (_, a, _) => Done(Get(a[0]).Subroles.Cast<object?>().ToList()));
        registry.Implement("role.get_is_internal", (_, a, _) => Done(Get(a[0]).IsInternal));
        registry.Implement("role.get_permissions", (_, a, _) => Done(Refs(RoleTable.PermissionsOf(Get(a[0])))));
        registry.Implement("role.get_permissions_name_label", (_, a, _) =>
            Done(RoleTable.PermissionsOf(Get(a[0])).Select(p => (object?)p.NameLabel).ToList()));

        // The roles that hold a permission, the permission itself left out; nothing for a permission no role holds.
        registry.Implement("role.get_by_permission", (_, a, _) =>
        {
            var permission = (string)a[0]!;
            return Done(Refs(RoleTable.Holding(p => p.Ref == permission, permission)));
        });
        registry.Implement("role.get_by_permission_name_label", (_, a, _) =>
        {
            var label = (string)a[0]!;
            return Done(Refs(RoleTable.Holding(p => p.NameLabel == label, RoleTable.FindByNameLabel(label)?.Ref ?? OpaqueRef.Null)));
        });
    }

    private static StaticRole Get(object? reference)
    {
        var r = (string)reference!;
        return RoleTable.FindByRef(r) ?? throw XenApiException.HandleInvalid(XenApi.Role.ClassName, r);
    }

    private static List<object?> Refs(IEnumerable<StaticRole> roles) => roles.Select(r => (object?)r.Ref).ToList();

    private static Task<object?> Done(object? result) => Task.FromResult(result);
}
