using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The lab's storage server as an administrator with a NAS and a SAN meets it, through <c>xe</c>: <c>sr-probe</c>
/// finds its NFS export (and the pool's shared SR on it) and its iSCSI target and LUN, and an SR of each kind, with a
/// VDI on it, is forgotten and comes back (<c>sr-introduce</c>, <c>pbd-create</c> and <c>pbd-plug</c> on every host)
/// with its VDI under the same uuid, name and size: what a pool rebuilt from scratch does to find its disks again. The
/// pool's ISO library is on the server's SMB share, mounted on every host. An SR unplugged keeps no lease export on any
/// host.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class StorageLabTests(SharedLab shared)
{
    private const string Export = "/srv/vms";
    private const string Iqn = "iqn.2026-12.lab.corral:vms";
    private const string ScsiId = "360000000000000000e00000000010001";
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task Sr_probe_finds_the_storage_servers_export_and_lun_and_a_forgotten_sr_comes_back_with_its_vdi()
    {
        var server = _lab.StorageAddress;
        var sharedSr = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        Assert.Equal("nfs", await _lab.Xe("sr-param-get", $"uuid={sharedSr}", "param-name=type"));

        // NFS: the server's exports (SM's answer is an error whose last parameter lists them), then the SRs on one.
        var (code, exports) = await _lab.TryXe("sr-probe", "type=nfs", $"device-config:server={server}");
        Assert.NotEqual(0, code);
        Assert.Contains("SR_BACKEND_FAILURE_101", exports, StringComparison.Ordinal);
        Assert.Contains($"<Path>{Export}</Path>", exports, StringComparison.Ordinal);
        Assert.Contains($"<UUID>{sharedSr}</UUID>", await _lab.Xe("sr-probe", "type=nfs", $"device-config:server={server}", $"device-config:serverpath={Export}"),
            StringComparison.Ordinal);

        // iSCSI: the portal's targets, then the target's LUNs.
        var (targetsCode, targets) = await _lab.TryXe("sr-probe", "type=lvmoiscsi", $"device-config:target={server}");
        Assert.NotEqual(0, targetsCode);
        Assert.Contains("SR_BACKEND_FAILURE_96", targets, StringComparison.Ordinal);
        Assert.Contains($"<TargetIQN>{Iqn}</TargetIQN>", targets, StringComparison.Ordinal);
        var (lunsCode, luns) = await _lab.TryXe("sr-probe", "type=lvmoiscsi", $"device-config:target={server}", $"device-config:targetIQN={Iqn}");
        Assert.NotEqual(0, lunsCode);
        Assert.Contains("SR_BACKEND_FAILURE_107", luns, StringComparison.Ordinal);
        Assert.Contains($"<SCSIid>{ScsiId}</SCSIid>", luns, StringComparison.Ordinal);

        // The ISO library is on the server's SMB share, mounted by every host.
        var library = await _lab.Xe("sr-list", "name-label=ISO library", "--minimal");
        var libraryPbd = (await _lab.Xe("pbd-list", $"sr-uuid={library}", "params=uuid", "--minimal")).Split(',')[0];
        Assert.Equal($"//{server}/isos", await _lab.Xe("pbd-param-get", $"uuid={libraryPbd}", "param-name=device-config", "param-key=location"));
        Assert.Equal("true,true,true", await _lab.Xe("pbd-list", $"sr-uuid={library}", "params=currently-attached", "--minimal"));

        await ForgetAndIntroduceAsync("nfs", $"server={server}", $"serverpath={Export}");
        await ForgetAndIntroduceAsync("lvmoiscsi", $"target={server}", $"targetIQN={Iqn}", $"SCSIid={ScsiId}");
    }

    private async Task ForgetAndIntroduceAsync(string type, params string[] deviceConfig)
    {
        var config = deviceConfig.Select(c => "device-config:" + c).ToArray();
        var master = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        var sr = await _lab.Xe(["sr-create", $"host-uuid={master}", $"name-label=kept {type}", $"type={type}", "content-type=user", "shared=true", .. config]);
        try
        {
            var vdi = await _lab.Xe("vdi-create", $"sr-uuid={sr}", "name-label=kept disk", "type=user", "virtual-size=67108864");
            await DetachAsync(sr);
            // Unplugged, the SR keeps no lease export (qemu-storage-daemon) or sanlock lockspace on any host.
            await LabSession.Eventually(() => Task.FromResult(Enumerable.Range(1, 3).All(host => !File.Exists(LeaseExportPid(host, sr)))),
                TimeSpan.FromSeconds(60), $"every host to stop the lease export of the unplugged {type} SR");
            await _lab.Xe("sr-forget", $"uuid={sr}");
            Assert.Equal("", await _lab.Xe("vdi-list", $"uuid={vdi}", "--minimal"));

            // What the storage holds names the SR, and the administrator brings it back under its uuid.
            Assert.Contains($"<UUID>{sr}</UUID>", await _lab.Xe(["sr-probe", $"type={type}", .. config]), StringComparison.Ordinal);
            await _lab.Xe("sr-introduce", $"uuid={sr}", $"name-label=kept {type}", $"type={type}", "content-type=user", "shared=true");
            foreach (var host in (await _lab.Xe("host-list", "params=uuid", "--minimal")).Split(','))
            {
                var pbd = await _lab.Xe(["pbd-create", $"host-uuid={host}", $"sr-uuid={sr}", .. config]);
                await _lab.Xe("pbd-plug", $"uuid={pbd}");
            }

            Assert.Equal("true,true,true", await _lab.Xe("pbd-list", $"sr-uuid={sr}", "params=currently-attached", "--minimal"));
            Assert.Equal("kept disk", await _lab.Xe("vdi-param-get", $"uuid={vdi}", "param-name=name-label"));
            Assert.Equal("67108864", await _lab.Xe("vdi-param-get", $"uuid={vdi}", "param-name=virtual-size"));
            await _lab.Xe("vdi-destroy", $"uuid={vdi}");
        }
        finally
        {
            await DetachAsync(sr);
            await _lab.TryXe("sr-destroy", $"uuid={sr}");
        }
    }

    /// <summary>The pid file of the SR's lease volume export on lab-host<paramref name="host"/> (<c>Corral:Sanlock:VolumeDirectory</c>).</summary>
    private string LeaseExportPid(int host, string sr) =>
        Path.Combine(_lab.RunDirectory, $"host{host.ToString(System.Globalization.CultureInfo.InvariantCulture)}", "leases", sr + ".leases.pid");

    /// <summary>Every PBD of the SR unplugged, as before <c>sr-forget</c> or <c>sr-destroy</c>.</summary>
    private async Task DetachAsync(string sr)
    {
        foreach (var pbd in (await _lab.TryXe("pbd-list", $"sr-uuid={sr}", "params=uuid", "--minimal")).Output.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            await _lab.TryXe("pbd-unplug", $"uuid={pbd}");
        }
    }
}
