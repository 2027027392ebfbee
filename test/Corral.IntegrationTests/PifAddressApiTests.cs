using Corral.Api;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// <c>PIF.reconfigure_ip</c>'s checks over a real etcd, as xapi's (xapi_pif.ml): an unmanaged PIF, addresses that are not
/// IPv4 (and a netmask whose ones are not contiguous), HA on, mode None on the management interface; and Corral's own:
/// the management interface's address is not changed (given again as it is, nothing happens). A valid configuration
/// of a host that is not live ends in HOST_OFFLINE, before anything reaches a host. The record is unchanged throughout.
/// </summary>
public sealed class PifAddressApiTests : IAsyncLifetime
{
    private ApiFixture _fixture = null!;
    private string _session = "";
    private string _pool = "";
    private string _host = "";

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync(startHostedServices: false);
        _session = await _fixture.LoginAsync();
        var tx = new PoolTransaction();
        _host = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h1", ["enabled"] = true }).Ref;
        _pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = _host }).Ref;
        await _fixture.Database.CommitAsync(tx, default);
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private async Task<string> PifAsync(string device, bool management = false, bool managed = true)
    {
        var tx = new PoolTransaction();
        var pif = tx.Create(XenClasses.PIFSchema, new Dictionary<string, object?>
        {
            ["device"] = device, ["host"] = _host, ["managed"] = managed, ["management"] = management, ["currently_attached"] = true,
            ["ip_configuration_mode"] = management ? "Static" : "None", ["IP"] = management ? "10.0.0.11" : "",
            ["netmask"] = management ? "255.255.255.0" : "", ["gateway"] = management ? "10.0.0.1" : "", ["DNS"] = management ? "10.0.0.2" : "",
        });
        await _fixture.Database.CommitAsync(tx, default);
        return pif.Ref;
    }

    private async Task<string[]> Refused(string pif, string mode, string ip = "", string netmask = "", string gateway = "", string dns = "")
    {
        var before = await _fixture.Database.GetAsync(XenClasses.PIF, pif, default);
        var error = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("PIF.reconfigure_ip", _session, pif, mode, ip, netmask, gateway, dns));
        Assert.True(before.SameFieldsAs(await _fixture.Database.GetAsync(XenClasses.PIF, pif, default)));
        return [error.Code, .. error.Parameters];
    }

    [Fact]
    public async Task Addresses_that_are_not_ipv4_and_unmanaged_pifs_are_refused_as_xapi_refuses_them()
    {
        var pif = await PifAsync("eth1");
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "IP"], await Refused(pif, "Static", netmask: "255.255.255.0"));
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "IP"], await Refused(pif, "Static", "10.1", "255.255.255.0"));
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "IP"], await Refused(pif, "static", "fd00::5", "255.255.255.0"));
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "netmask"], await Refused(pif, "Static", "10.0.1.5"));
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "netmask"], await Refused(pif, "Static", "10.0.1.5", "255.0.255.0"));
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "gateway"], await Refused(pif, "Static", "10.0.1.5", "255.255.255.0", "gw"));
        // Given with DHCP too, what is given must be an address.
        Assert.Equal(["INVALID_IP_ADDRESS_SPECIFIED", "gateway"], await Refused(pif, "DHCP", gateway: "10.0.1"));
        await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("PIF.reconfigure_ip", _session, pif, "Manual", "", "", "", ""));

        var unmanaged = await PifAsync("eth2", managed: false);
        Assert.Equal(["PIF_UNMANAGED", unmanaged], await Refused(unmanaged, "DHCP"));

        // Valid, on a host that is not live: HOST_OFFLINE, the record as it was.
        Assert.Equal(["HOST_OFFLINE", _host], await Refused(pif, "Static", "10.0.1.5", "255.255.255.0", "", "10.0.1.1,fd00::1"));
    }

    [Fact]
    public async Task With_ha_on_an_attached_pif_keeps_its_address_and_the_management_interface_is_not_moved()
    {
        var management = await PifAsync("eth0", management: true);
        Assert.Equal(["PIF_IS_MANAGEMENT_IFACE", management], await Refused(management, "None"));
        Assert.Equal("OPERATION_NOT_ALLOWED", (await Refused(management, "Static", "10.0.0.12", "255.255.255.0", "10.0.0.1", "10.0.0.2"))[0]);
        Assert.Equal("OPERATION_NOT_ALLOWED", (await Refused(management, "DHCP"))[0]);
        // Given again as it is: nothing to do, no host asked.
        Assert.Null(await _fixture.Call("PIF.reconfigure_ip", _session, management, "Static", "10.0.0.11", "255.255.255.0", "10.0.0.1", "10.0.0.2"));

        await _fixture.Database.UpdateAsync([(XenClasses.Pool, _pool)], (objs, tx) =>
        {
            var pool = objs[0].Clone();
            pool.Set(XenApi.Pool.HaEnabled, true);
            tx.Update(pool);
        }, default);
        var pif = await PifAsync("eth1");
        Assert.Equal(["HA_IS_ENABLED"], await Refused(pif, "Static", "10.0.1.5", "255.255.255.0"));
        Assert.Equal(["HA_IS_ENABLED"], await Refused(pif, "DHCP"));
        Assert.Equal(["HA_IS_ENABLED"], await Refused(management, "Static", "10.0.0.11", "255.255.255.0", "10.0.0.254", "10.0.0.2"));
    }
}
