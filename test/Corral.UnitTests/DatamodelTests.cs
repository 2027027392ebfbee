using Corral.Model;
using Corral.ModelGen;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The model is generated from xapi's datamodel and cannot drift from it.</summary>
public class DatamodelTests
{
    private static readonly string Root = RepositoryRoot.Find(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("tests run inside the repository");

    private static readonly DatamodelFacts Facts = DatamodelFacts.Load(RepositoryRoot.FactsPath(Root));

    [Fact]
    public void The_generated_model_is_what_the_generator_makes_of_the_checked_in_datamodel()
    {
        var expected = ModelGenerator.Generate(Facts, RbacFacts.Load(RepositoryRoot.RbacPath(Root)));
        var directory = RepositoryRoot.GeneratedPath(Root);
        var actual = Directory.GetFiles(directory, "*.g.cs").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual);
        foreach (var (name, text) in expected)
        {
            Assert.True(text == File.ReadAllText(Path.Combine(directory, name)), $"{name} differs from the generator's output: run tools/generate-model");
        }
    }

    [Fact]
    public void The_checked_in_datamodel_round_trips_through_its_own_format() =>
        Assert.Equal(File.ReadAllText(RepositoryRoot.FactsPath(Root)), Facts.ToJson());

    [Fact]
    public void Every_class_of_the_datamodel_is_in_the_model_and_the_pool_holds_the_64_not_removed()
    {
        Assert.Equal(Facts.Classes.Select(c => c.Name), XenApi.AllClasses.Select(c => c.Name));
        Assert.Equal(64, XenClasses.All.Count);
        Assert.DoesNotContain(XenClasses.All, c => c.Lifecycle == Lifecycle.Removed);
        foreach (var cls in Facts.Classes)
        {
            var schema = XenApi.AllClasses.Single(c => c.Name == cls.Name);
            Assert.Equal(cls.Fields.Select(f => f.Name), schema.Fields.Select(f => f.Name));
            Assert.Equal(cls.Messages.Select(m => m.Name), schema.Messages.Select(m => m.Name));
        }
    }

    [Fact]
    public void Message_signatures_carry_the_datamodel_parameters_and_their_defaults()
    {
        var login = XenApi.Session.Schema.Messages.Single(m => m.Name == "login_with_password");
        Assert.False(login.Session);
        Assert.Equal(["uname", "pwd", "version", "originator"], login.Parameters.Select(p => p.Name));
        Assert.Equal(2, login.RequiredCount);
        Assert.Equal("1.1", login.Parameters[2].Default);

        var start = XenApi.VM.Schema.Messages.Single(m => m.Name == "start");
        Assert.True(start.Session);
        Assert.Equal(["vm", "start_paused", "force"], start.Parameters.Select(p => p.Name));
        Assert.Equal(FieldType.Ref("VM"), start.Parameters[0].Type);
        Assert.Equal(3, start.RequiredCount);
        Assert.Contains("VM_BAD_POWER_STATE", start.Errors);
        Assert.Contains("vm-operator", start.Roles);
    }

    [Fact]
    public void Field_types_and_defaults_come_from_the_datamodel()
    {
        var vm = XenApi.VM.Schema;
        Assert.Equal(XenEnumTypes.VmPowerState, vm.Get("power_state").Type);
        Assert.Equal(FieldType.RefSet("VBD"), vm.Get("VBDs").Type);
        Assert.Equal(FieldAccess.RW, vm.Get("name_label").Access);
        Assert.Equal(FieldAccess.RO, vm.Get("domid").Access);
        Assert.Equal(FieldAccess.SRO, XenApi.VBD.Schema.Get("VM").Access);
        Assert.True(XenApi.VBD.Schema.Get("VM").RequiredInConstructor);
        Assert.False(XenApi.VBD.Schema.Get("unpluggable").RequiredInConstructor);
        Assert.Equal(OpaqueRef.Null, XenApi.VBD.Schema.Get("metrics").NewDefault());
        Assert.Equal(1500L, XenApi.Network.Schema.Get("MTU").NewDefault());
        Assert.Equal("unlocked", XenApi.Network.Schema.Get("default_locking_mode").NewDefault());
    }

    [Fact]
    public void Typed_handles_read_and_write_the_stored_values()
    {
        var tx = new Corral.PoolDatabase.PoolTransaction();
        var vm = tx.Create(XenApi.VM.Schema);
        Assert.Equal(VmPowerState.Halted, vm.Get(XenApi.VM.PowerState));
        vm.Set(XenApi.VM.PowerState, VmPowerState.Running);
        Assert.Equal("Running", vm.GetString("power_state"));
        vm.Set(XenApi.VM.AllowedOperations, [VmOperations.CleanShutdown, VmOperations.PoolMigrate]);
        Assert.Equal(["clean_shutdown", "pool_migrate"], vm.GetSet("allowed_operations"));
        vm.Set(XenApi.VM.CurrentOperations, new Dictionary<string, VmOperations> { ["OpaqueRef:t"] = VmOperations.Start });
        Assert.Equal("start", vm.GetStringMap("current_operations")["OpaqueRef:t"]);
        Assert.Equal(OpaqueRef.Null, vm.Get(XenApi.VM.ResidentOn));
        vm.Set(XenApi.VM.OtherConfig, new Dictionary<string, string> { ["k"] = "v" });
        Assert.Equal("v", vm.Get(XenApi.VM.OtherConfig)["k"]);
    }

    [Fact]
    public void Enum_values_with_dashes_keep_their_wire_spelling() =>
        Assert.Equal("balance-slb", XenEnum.ToWire(XenEnumTypes.BondMode, BondMode.BalanceSlb));
}
