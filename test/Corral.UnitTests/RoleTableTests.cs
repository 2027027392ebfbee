using Corral.Model;
using Xunit;

namespace Corral.UnitTests;

/// <summary>xapi's static roles as Corral serves them: names, references and uuids clients may rely on, and permissions.</summary>
public class RoleTableTests
{
    private static StaticRole Role(string name) => RoleTable.FindByNameLabel(name) ?? throw new InvalidOperationException($"no role {name}");

    private static HashSet<string> Names(string role) => RoleTable.PermissionsOf(Role(role)).Select(p => p.NameLabel).ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void The_six_roles_of_xenserver_and_the_internal_client_cert_role_are_served_in_order_of_privilege()
    {
        Assert.Equal(["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "client-cert", "read-only"],
            RoleTable.Roles.Select(r => r.NameLabel));
        Assert.Equal(["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"],
            RoleTable.Roles.Where(r => !r.IsInternal).Select(r => r.NameLabel));
        Assert.All(RoleTable.Roles, r => Assert.False(r.IsPermission));
        Assert.All(RoleTable.Roles, r => Assert.False(string.IsNullOrEmpty(r.NameDescription)));
    }

    [Theory]
    // pool-admin's uuid is fixed in xapi; the others are what `xe role-list` shows on a XenServer.
    [InlineData("pool-admin", "0165f154-ba3e-034e-6b27-5d271af109ba")]
    [InlineData("pool-operator", "b9ce9791-0604-50cd-0649-09b3284c7dfd")]
    [InlineData("vm-power-admin", "7955168d-7bec-10ed-105f-c6a7e6e63249")]
    [InlineData("vm-admin", "aaa00ab5-7340-bfbc-0d1b-7cf342639a6e")]
    [InlineData("vm-operator", "fb8d4ff9-310c-a959-0613-54101535d3d5")]
    [InlineData("read-only", "7233b8e3-eacb-d7da-2c95-f2e581cdbf4e")]
    public void Role_uuids_and_references_are_xapis(string name, string uuid)
    {
        var role = Role(name);
        Assert.Equal(uuid, role.Uuid);
        Assert.Equal("OpaqueRef:" + uuid, role.Ref);
        Assert.Same(role, RoleTable.FindByRef("OpaqueRef:" + uuid));
        Assert.Same(role, RoleTable.FindByUuid(uuid));
    }

    [Fact]
    public void The_default_role_of_a_subject_in_the_datamodel_is_pool_admin()
    {
        var defaultRoles = (List<object?>)XenApi.Subject.Schema.Get("roles").NewDefault()!;
        Assert.Equal([RoleTable.PoolAdminRole.Ref], defaultRoles.Cast<string>());
    }

    [Fact]
    public void Permissions_are_lower_case_wire_names_with_uuids_from_their_names()
    {
        var start = Role("vm.start");
        Assert.True(start.IsPermission);
        Assert.True(start.IsInternal);
        Assert.Equal(RoleTable.PermissionDescription, start.NameDescription);
        Assert.Equal(RoleTable.UuidOf("VM.start"), start.Uuid);
        Assert.Equal("24b924aa-926c-879e-d2c1-fe778e82ccee", start.Uuid);
        Assert.Equal([start], RoleTable.PermissionsOf(start));
        Assert.Equal(RoleTable.Permissions.Count, RoleTable.Permissions.Select(p => p.NameLabel).Distinct(StringComparer.Ordinal).Count());
        Assert.All(RoleTable.Permissions, p => Assert.Equal(p.NameLabel, p.NameLabel.ToLowerInvariant()));
    }

    [Fact]
    public void Every_message_held_by_a_role_and_the_permissions_xapis_idl_adds_are_permissions()
    {
        var messages = XenApi.AllClasses.SelectMany(c => c.Messages).Count(m => m.Roles.Count > 0);
        Assert.Equal(messages + XenApi.Rbac.ExtraPermissions.Count, RoleTable.Permissions.Count);
        // At xapi e2ee48d6: 1816 messages of the published datamodel, 161 more from its IDL.
        Assert.Equal(1977, RoleTable.Permissions.Count);
        Assert.Equal(RoleTable.Permissions.Count + RoleTable.Roles.Count, RoleTable.All.Count);
        Assert.Equal(RoleTable.Permissions.Select(p => p.Ref).Order(StringComparer.Ordinal), Role("pool-admin").Subroles.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("pool-admin", 1977)]
    [InlineData("pool-operator", 1874)]
    [InlineData("vm-power-admin", 1425)]
    [InlineData("vm-admin", 1386)]
    [InlineData("vm-operator", 1234)]
    [InlineData("client-cert", 1194)]
    [InlineData("read-only", 1155)]
    public void Each_role_holds_xapis_number_of_permissions(string role, int count) => Assert.Equal(count, Names(role).Count);

    [Fact]
    public void Each_role_of_the_six_holds_every_permission_of_the_roles_below_it_and_more()
    {
        string[] order = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"];
        for (var i = 1; i < order.Length; i++)
        {
            Assert.True(Names(order[i]).IsProperSubsetOf(Names(order[i - 1])), $"{order[i]} is not below {order[i - 1]}");
        }
    }

    [Theory]
    [InlineData("read-only", "vm.get_record", true)]
    [InlineData("read-only", "role.get_all_records", true)]
    [InlineData("read-only", "session.get_rbac_permissions", true)]
    [InlineData("read-only", "http/get_vm_rrds", true)]
    [InlineData("read-only", "vm.start", false)]
    [InlineData("read-only", "vm.add_to_other_config/key:folder", false)]
    [InlineData("vm-operator", "vm.start", true)]
    [InlineData("vm-operator", "vm.clean_shutdown", true)]
    [InlineData("vm-operator", "vm.add_to_other_config/key:folder", true)]
    [InlineData("vm-operator", "vm.destroy", false)]
    [InlineData("vm-admin", "vm.destroy", true)]
    [InlineData("vm-admin", "vm.pool_migrate", false)]
    [InlineData("vm-power-admin", "vm.pool_migrate", true)]
    [InlineData("vm-power-admin", "task.destroy/any", false)]
    [InlineData("pool-operator", "task.destroy/any", true)]
    [InlineData("pool-operator", "message.destroy", true)]
    [InlineData("pool-operator", "subject.create", false)]
    [InlineData("pool-operator", "vm.add_to_other_config/key:pci", false)]
    [InlineData("pool-admin", "subject.create", true)]
    [InlineData("pool-admin", "http/connect_console/host_console", true)]
    [InlineData("pool-admin", "host.ha_xapi_healthcheck", true)]
    public void Known_permissions_belong_to_the_roles_xapi_gives_them(string role, string permission, bool holds) =>
        Assert.Equal(holds, Names(role).Contains(permission));

    [Fact]
    public void A_permission_no_role_holds_is_no_role_at_all()
    {
        // VM.set_NVRAM_EFI_variables is for the local root only (hidden); session.create_from_db_file likewise.
        Assert.Null(RoleTable.FindByNameLabel("vm.set_nvram_efi_variables"));
        Assert.Null(RoleTable.FindByNameLabel("session.create_from_db_file"));
    }

    [Fact]
    public void The_roles_holding_a_permission_are_found_by_it()
    {
        var start = Role("vm.start");
        Assert.Equal(["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator"],
            RoleTable.Holding(p => p.Ref == start.Ref, start.Ref).Select(r => r.NameLabel));
        Assert.Empty(RoleTable.Holding(p => p.Ref == "OpaqueRef:nothing", "OpaqueRef:nothing"));
    }

    [Fact]
    public void A_sessions_permissions_name_its_roles_and_what_they_allow()
    {
        var permissions = RoleTable.SessionPermissions([Role("vm-operator").Ref, Role("read-only").Ref, "OpaqueRef:unknown"]);
        Assert.Contains("vm-operator", permissions);
        Assert.Contains("read-only", permissions);
        Assert.Contains("vm.start", permissions);
        Assert.DoesNotContain("vm.destroy", permissions);
        Assert.Equal(permissions.Count, permissions.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(Names("vm-operator").Count + 2, permissions.Count);
    }

    [Theory]
    [InlineData("VM.start", null, "vm.start")]
    [InlineData("VM.add_to_other_config", "folder", "vm.add_to_other_config/key:folder")]
    [InlineData("VM.add_to_other_config", "owner", "vm.add_to_other_config")]
    [InlineData("network.add_to_other_config", "XenCenter.CustomFields.colour", "network.add_to_other_config/key:xencenter.customfields.*")]
    [InlineData("network.add_to_other_config", "XenCenter.Other", "network.add_to_other_config")]
    public void A_call_needs_its_messages_permission_or_its_guarded_keys(string message, string? key, string permission)
    {
        Assert.Equal(permission, RoleTable.PermissionFor(message, key));
        Assert.True(RoleTable.IsPermission(permission));
    }

    [Fact]
    public void A_denial_names_the_roles_that_hold_the_permission_most_privileged_first()
    {
        Assert.Equal(["pool-admin", "pool-operator", "vm-power-admin", "vm-admin"], RoleTable.RolesHolding("vm.destroy"));
        Assert.Empty(RoleTable.RolesHolding("vm.fly"));
    }

    [Fact]
    public void A_session_is_allowed_its_roles_permissions_and_pool_admin_what_no_role_holds()
    {
        var session = new XenObject(XenClasses.SessionSchema, "OpaqueRef:s", new Dictionary<string, object?>());
        session.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([Role("vm-operator").Ref]));
        var operatorAccess = Api.Sessions.SessionAccess.Of(session);
        Assert.True(operatorAccess.Allows("vm.start"));
        Assert.False(operatorAccess.Allows("vm.destroy"));
        Assert.False(operatorAccess.Allows("vm.set_nvram_efi_variables"));

        session.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([Role("pool-admin").Ref]));
        var admin = Api.Sessions.SessionAccess.Of(session);
        Assert.True(admin.Allows("vm.destroy"));
        Assert.True(admin.Allows("vm.set_nvram_efi_variables"));

        session.Set(XenApi.Session.IsLocalSuperuser, true);
        Assert.True(Api.Sessions.SessionAccess.Of(session).Unrestricted);
    }
}
