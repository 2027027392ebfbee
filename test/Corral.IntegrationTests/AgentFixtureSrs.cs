using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>An SR of the fixture's pool as its host reaches it, through the API as a client asks.</summary>
public static class AgentFixtureSrs
{
    /// <summary>The SR's uuid and its location on the fixture's host (<see cref="SrLocation.Of"/> of its PBD's device config).</summary>
    public static async Task<(string SrUuid, string Location)> LocationAsync(this AgentFixture pool, string sr)
    {
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var config = ((Dictionary<string, object?>)(await pool.S("PBD.get_device_config", await pool.MyPbdAsync(sr)))!)
            .ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        return (srUuid, SrLocation.Of(config, srUuid)!);
    }

    /// <summary>The SR's PBD on the fixture's host.</summary>
    public static async Task<string> MyPbdAsync(this AgentFixture pool, string sr)
    {
        foreach (var pbd in ((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Cast<string>())
        {
            if ((string)(await pool.S("PBD.get_host", pbd))! == pool.Host.Ref)
            {
                return pbd;
            }
        }

        throw new InvalidOperationException("no PBD on this host");
    }

    /// <summary>An NFS SR on the rig's export, made with SR.create as a client does: its reference, uuid and location here.</summary>
    public static async Task<(string Sr, string SrUuid, string Location)> CreateNfsSrAsync(this AgentFixture pool, NfsRig nfs, string name)
    {
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("server", NfsRig.Server), ("serverpath", nfs.Export)), 0L, name, "", "nfs", "", true, Map()))!;
        var (srUuid, location) = await pool.LocationAsync(sr);
        return (sr, srUuid, location);
    }

    /// <summary>An iSCSI SR on the tgt rig's LUN (<c>lvmoiscsi</c>), made with SR.create: its reference, uuid and location here.</summary>
    public static async Task<(string Sr, string SrUuid, string Location)> CreateIscsiSrAsync(this AgentFixture pool, string name)
    {
        var config = Map(("target", TgtRig.Address), ("port", "3260"), ("targetIQN", TgtRig.Iqn), ("SCSIid", TgtRig.ScsiId));
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, config, 0L, name, "", "lvmoiscsi", "user", true, Map()))!;
        var (srUuid, location) = await pool.LocationAsync(sr);
        return (sr, srUuid, location);
    }

    /// <summary>Four hosts asking at once for the SR's <paramref name="volume"/> get one and the same.</summary>
    public static async Task<(string Blockdev, string? Password)> SharedVolumeMadeOnceAsync(this AgentFixture pool, string type, string location, string srUuid,
        SharedVolume volume, string node)
    {
        var driver = (ISharedVolumes)pool.Services.GetRequiredService<SrDrivers>().Get(type);
        var made = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => driver.VolumeAsync(location, srUuid, volume, node, default)));
        Assert.Single(made.Distinct());
        return made[0];
    }

    /// <summary>The SR scanned (no VDI found: the pool's own volumes are none), unplugged here and destroyed.</summary>
    public static async Task DestroyEmptyAsync(this AgentFixture pool, string sr)
    {
        await pool.S("SR.scan", sr);
        Assert.Empty((List<object?>)(await pool.S("SR.get_VDIs", sr))!);
        await pool.S("PBD.unplug", await pool.MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
    }

    public static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => (object?)p.Value);
}
