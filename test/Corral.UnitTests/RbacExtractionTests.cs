using Corral.ModelGen;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The generator reads the permissions xenapi.json leaves out from IDL sources shaped as xapi's are.</summary>
public sealed class RbacExtractionTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("corral-rbac-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private const string Roles = """
        let role_pool_admin = "pool-admin"
        let role_vm_op = "vm-operator"
        let role_client_cert = "client-cert"
        let role_read_only = "read-only"
        let ordered =
          [ (role_pool_admin, "Everything", false)
          ; (role_vm_op, "Uses VMs \
             and consoles", false)
          ; (role_client_cert, "Certificates", true)
          ; (role_read_only, "Reads", false) ]
        let _R_LOCAL_ROOT_ONLY = Some [] (* only local root *)
        let _R_POOL_ADMIN = Some (roles_gte role_pool_admin)
        let _R_VM_OP = Some (roles_gte role_vm_op)
        let _R_READ_ONLY = Some (roles_gte role_read_only)
        let _R_ALL = _R_READ_ONLY
        let _R_CLIENT_CERT = Some [role_client_cert]
        """;

    private const string Model = """
        let _vm = "VM"
        module Special = struct
          let protected_keys = [("folder", _R_VM_OP); ("pci", _R_POOL_ADMIN)]
          let call = call ~lifecycle:[] ~allowed_roles:_R_ALL
          let add_to_other_config =
            call ~name:"add_to_other_config" ~doc:"(* not a comment *) call ~name:\"x\""
              ~map_keys_roles:protected_keys ()
          let tidy = call ~name:"tidy" ~hide_from_docs:true ()
        end
        let secret_thing =
          call ~name:"secret_thing" ~hide_from_docs:true ~allowed_roles:(_R_VM_OP ++ _R_CLIENT_CERT) ()
        (* let ignored = call ~name:"ignored" ~hide_from_docs:true ~allowed_roles:_R_ALL () *)
        let root_only = call ~name:"root_only" ~hide_from_docs:true ~allowed_roles:_R_LOCAL_ROOT_ONLY ()
        let unlisted = call ~name:"unlisted" ~hide_from_docs:true ~allowed_roles:_R_ALL ()
        let t =
          create_obj ~name:_vm ~messages_default_allowed_roles:_R_POOL_ADMIN
            ~messages:[Special.add_to_other_config; Special.tidy; secret_thing; root_only]
            ~contents:
              [ field ~ty:(Map (String, String)) ~lifecycle:[(Published, rel_rio, "a \"quoted\" text")]
                  "tags_map" "a map" ~map_keys_roles:[("XenCenter.CustomFields.*", _R_VM_OP)]
              ; field ~qualifier:DynamicRO ~ty:(Map (String, String)) "seen" "read only"
                  ~map_keys_roles:[("k", _R_VM_OP)] ]
            ()
        let http_actions =
          [ ("get_thing", (Get, "/thing", true, [String_query_arg "uuid"], _R_READ_ONLY, []))
          ; ( Constants.get_rrd, (Get, "/rrd", false, [], _R_VM_OP, [("host_console", _R_POOL_ADMIN)]) ) ]
        let extra_permission_destroy_any = "VM.destroy/any"
        let extra_permissions = [(extra_permission_destroy_any, _R_POOL_ADMIN)]
        """;

    private static DatamodelFacts Facts() => new("test",
    [
        new ClassFacts("VM", "published",
        [
            new FieldFacts("tags_map", "(string -> string) map", "RW"),
            new FieldFacts("seen", "(string -> string) map", "RO/runtime"),
        ],
        [
            Message("add_to_other_config", false),
            Message("add_to_tags_map", true),
            Message("remove_from_tags_map", true),
        ]),
    ], []);

    private static MessageFacts Message(string name, bool isImplicit) => new(name, true, [], "void", [], ["pool-admin"], isImplicit, "published");

    [Fact]
    public void Hidden_messages_protected_keys_http_handlers_and_extra_permissions_are_read_with_their_roles()
    {
        var roles = Write("datamodel_roles.ml", Roles);
        var model = Write("datamodel.ml", Model);
        var constants = Write("constants.ml", "let get_rrd = \"rrd\"\nlet rbac_pool_admin_uuid = \"0165f154-ba3e-034e-6b27-5d271af109ba\"\n");
        var facts = OcamlRbac.Extract([roles, model], constants, "test", Facts(), TextWriter.Null);

        Assert.Equal("0165f154-ba3e-034e-6b27-5d271af109ba", facts.PoolAdminUuid);
        Assert.Equal([new RoleFacts("pool-admin", false), new RoleFacts("vm-operator", false), new RoleFacts("client-cert", true), new RoleFacts("read-only", false)], facts.Roles);
        var permissions = facts.Permissions.ToDictionary(p => p.Name, p => string.Join(",", p.Roles));
        Assert.Equal(new Dictionary<string, string>
        {
            // A hidden call takes the roles of the module's `let call = call ... ~allowed_roles`, or its own.
            ["VM.tidy"] = "pool-admin,vm-operator,client-cert,read-only",
            ["VM.secret_thing"] = "pool-admin,vm-operator,client-cert",
            ["VM.add_to_other_config/key:folder"] = "pool-admin,vm-operator",
            ["VM.add_to_other_config/key:pci"] = "pool-admin",
            ["VM.add_to_tags_map/key:XenCenter.CustomFields.*"] = "pool-admin,vm-operator",
            ["VM.remove_from_tags_map/key:XenCenter.CustomFields.*"] = "pool-admin,vm-operator",
            ["http/get_thing"] = "pool-admin,vm-operator,client-cert,read-only",
            ["http/rrd"] = "pool-admin,vm-operator",
            ["http/rrd/host_console"] = "pool-admin",
            ["VM.destroy/any"] = "pool-admin",
        }, permissions);
        Assert.Equal(["extra", "http", "key", "message"], facts.Permissions.Select(p => p.Kind).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void An_unknown_role_set_is_an_error_not_a_permission_without_roles()
    {
        var roles = Write("datamodel_roles.ml", Roles);
        var model = Write("datamodel.ml", Model.Replace("(_R_VM_OP ++ _R_CLIENT_CERT)", "_R_NOBODY", StringComparison.Ordinal));
        var constants = Write("constants.ml", "let get_rrd = \"rrd\"\nlet rbac_pool_admin_uuid = \"u\"\n");
        Assert.Throws<InvalidDataException>(() => OcamlRbac.Extract([roles, model], constants, "test", Facts(), TextWriter.Null));
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }
}
