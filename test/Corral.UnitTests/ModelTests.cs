using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.Api.Sessions;
using Xunit;

namespace Corral.UnitTests;

public class FieldTypeTests
{
    [Theory]
    [InlineData("42", 42L)]
    [InlineData(42L, 42L)]
    [InlineData(7, 7L)]
    public void Int_accepts_the_wire_forms_clients_send(object value, long expected) =>
        Assert.Equal(expected, FieldType.Int.Coerce(value));

    [Fact]
    public void Int_refuses_text_that_is_not_a_number() =>
        Assert.Throws<FormatException>(() => FieldType.Int.Coerce("forty"));

    [Fact]
    public void Enum_matches_case_insensitively_and_returns_the_canonical_spelling() =>
        Assert.Equal("Running", XenEnumTypes.VmPowerState.Coerce("running"));

    [Fact]
    public void Enum_refuses_unknown_values() =>
        Assert.Throws<FormatException>(() => XenEnumTypes.VmPowerState.Coerce("Exploded"));

    [Fact]
    public void Map_round_trips_through_json()
    {
        var map = new Dictionary<string, object?> { ["vm-data/ip"] = "10.0.0.5/24" };
        var json = FieldType.StringMap.ToJson(map);
        Assert.Equal(map, FieldType.StringMap.FromJson(json));
    }

    [Fact]
    public void Datetime_uses_xapi_spelling()
    {
        var t = new DateTime(2026, 11, 24, 10, 15, 0, DateTimeKind.Utc);
        Assert.Equal("20261124T10:15:00Z", XenDateTime.Format(t));
        Assert.Equal(t, XenDateTime.Parse("20261124T10:15:00Z"));
    }
}

public class ObjectTests
{
    [Fact]
    public void Create_fills_defaults_uuid_and_reference()
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "web" });
        Assert.StartsWith("OpaqueRef:", vm.Ref, StringComparison.Ordinal);
        Assert.True(OpaqueRef.IsUuid(vm.Uuid));
        Assert.NotEqual(vm.Ref, OpaqueRef.Prefix + vm.Uuid);
        Assert.Equal("Halted", vm.GetString("power_state"));
        Assert.Equal(-1L, vm.GetInt("domid"));
        Assert.Equal("web", vm.GetString("name_label"));
    }

    [Fact]
    public void Create_refuses_fields_the_class_does_not_have()
    {
        var tx = new PoolTransaction();
        var ex = Assert.Throws<XenApiException>(() => tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["colour"] = "red" }));
        Assert.Equal(ErrorCodes.InvalidValue, ex.Code);
    }

    [Fact]
    public void Every_class_has_a_uuid_and_reverse_links_name_real_fields()
    {
        foreach (var schema in XenClasses.All.Where(c => c.Messages.Any(m => m.Name == "get_by_uuid")))
        {
            Assert.NotNull(schema.Find("uuid"));
        }

        foreach (var link in ReverseLink.All)
        {
            Assert.NotNull(XenClasses.Get(link.ClassName).Find(link.Field));
            Assert.NotNull(XenClasses.Get(link.ChildClass).Find(link.ChildField));
        }
    }
}

public class NetworkingTests
{
    [Fact]
    public void Random_macs_are_locally_administered_unicast()
    {
        for (var i = 0; i < 100; i++)
        {
            var mac = MacAddress.NewRandom();
            Assert.True(MacAddress.IsValid(mac), mac);
            Assert.Equal(2, Convert.ToByte(mac[..2], 16) & 3);
        }
    }

    [Theory]
    [InlineData("01:00:5e:00:00:01")]
    [InlineData("zz:00:00:00:00:00")]
    [InlineData("00:11:22:33:44")]
    public void Multicast_and_malformed_macs_are_refused(string mac) => Assert.False(MacAddress.IsValid(mac));

    [Fact]
    public void Tap_names_fit_linux_limits()
    {
        var name = BridgeNetworking.TapName(123456, "6");
        BridgeNetworking.ValidateName(name);
        Assert.Equal("vif123456.6", name);
    }
}

public class PasswordTests
{
    [Fact]
    public void Hash_verifies_only_the_right_password()
    {
        var stored = PasswordHasher.Hash("s3cret");
        Assert.True(PasswordHasher.Verify("s3cret", stored));
        Assert.False(PasswordHasher.Verify("S3cret", stored));
        Assert.False(PasswordHasher.Verify("s3cret", "garbage"));
    }
}
