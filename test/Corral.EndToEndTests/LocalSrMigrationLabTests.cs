using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// A storage live migration through the lab, on the shared lab: a VM whose disk is on one host's local SR moves to
/// another host's local SR with <c>xe vm-migrate vdi:...</c>, without losing a ping or a write of its guest; the
/// refusals that keep it where it is when a mapping is missing or wrong.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class LocalSrMigrationLabTests(SharedLab shared)
{
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;
    private string? _vm;

    [Fact]
    public async Task A_vm_on_a_hosts_local_sr_moves_live_with_its_disk()
    {
        try
        {
            await MoveAsync();
        }
        finally
        {
            if (_vm is not null)
            {
                await _shared.RemoveAsync(_vm);
            }
        }
    }

    private async Task MoveAsync()
    {
        var local2 = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host2", "--minimal");
        var local3 = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host3", "--minimal");
        var local1 = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host1", "--minimal");
        var subnet = await _shared.VmSubnetAsync();
        var ip = $"{subnet}.12";
        var gateway = $"{subnet}.1";

        // A VM whose disk is on lab-host2's own disk, writing its sequence from boot on.
        var vm = await _lab.Xe("vm-install", "template=Corral Linux test (no tools)", "new-name-label=local VM", $"sr-uuid={local2}");
        _vm = vm;
        await _lab.Xe("vm-param-set", $"uuid={vm}", $"xenstore-data:vm-data/ip={ip}/24", $"xenstore-data:vm-data/gateway={gateway}", "xenstore-data:vm-data/seqwrite=1");
        await _lab.Xe("vm-start", $"uuid={vm}", "on=lab-host2");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(60), "the local VM to answer ping");
        var vdi = await _lab.Xe("vbd-list", $"vm-uuid={vm}", "type=Disk", "params=vdi-uuid", "--minimal");
        var oldImage = Path.Combine(_lab.LabDirectory, "local-host2", vdi + ".qcow2");
        Assert.True(File.Exists(oldImage));

        // Without a disk mapping it cannot leave its host, and evacuation says why; a mapping to an SR the destination
        // cannot reach, to the ISO library or out of the pool is refused, and the VM stays where it is.
        var (plain, plainWhy) = await _lab.TryXe("vm-migrate", $"uuid={vm}", "host=lab-host3");
        Assert.NotEqual(0, plain);
        Assert.Contains("doesn't have access to an SR needed by the VM", plainWhy, StringComparison.Ordinal);
        Assert.Contains($"{vm} VM_REQUIRES_SR", await _lab.Xe("host-get-vms-which-prevent-evacuation", $"uuid={await HostAsync("lab-host2")}"), StringComparison.Ordinal);
        Assert.NotEqual(0, (await _lab.TryXe("vm-migrate", $"uuid={vm}", "host=lab-host3", $"vdi:{vdi}={local1}")).Code);
        var iso = await _lab.Xe("sr-list", "name-label=ISO library", "--minimal");
        var (toIso, toIsoWhy) = await _lab.TryXe("vm-migrate", $"uuid={vm}", "host=lab-host3", $"vdi:{vdi}={iso}");
        Assert.NotEqual(0, toIso);
        Assert.Contains("does not support the operation", toIsoWhy, StringComparison.Ordinal);
        var (remote, remoteWhy) = await _lab.TryXe("vm-migrate", $"uuid={vm}", "host=lab-host3", "remote-master=192.0.2.1", $"vdi:{vdi}={local3}");
        Assert.NotEqual(0, remote);
        Assert.Contains("not a host of this pool", remoteWhy, StringComparison.Ordinal);
        Assert.Equal(await HostAsync("lab-host2"), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));

        // xe vm-migrate with vdi:<vdi>=<sr>, as XenServer spells a storage live migration, pinged every 100 ms.
        var startTime = await StartTimeAsync(vm);
        using (var ping = Pinger.Start(ip))
        {
            await Task.Delay(1000);
            await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host3", $"vdi:{vdi}={local3}");
            await Task.Delay(1500);
            Assert.Equal(0, await ping.StopAsync());
        }

        Assert.Equal(await HostAsync("lab-host3"), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
        Assert.Equal(startTime, await StartTimeAsync(vm));
        Assert.Equal([3], _lab.RunningCopies(vm));
        // The memory stream and the NBD export took TLS: the destination's QEMU took lab-host2's certificate alone.
        Assert.Contains("authz-simple,id=corral-tls-peer,identity=CN=lab-host2", _lab.QemuArguments(3, vm));
        Assert.Contains("migration.tls-authz=corral-tls-peer", _lab.QemuArguments(3, vm));
        var newVdi = await _lab.Xe("vbd-list", $"vm-uuid={vm}", "type=Disk", "params=vdi-uuid", "--minimal");
        Assert.NotEqual(vdi, newVdi);
        Assert.Equal(local3, await _lab.Xe("vdi-param-get", $"uuid={newVdi}", "param-name=sr-uuid"));
        Assert.Equal("", await _lab.Xe("vdi-list", $"uuid={vdi}", "--minimal"));
        Assert.False(File.Exists(oldImage), "the old volume is deleted once the VM runs from its copy");

        // It keeps writing on its new disk; then the whole sequence, before and after the move, has no gap.
        await Task.Delay(3000);
        await _lab.Xe("vm-shutdown", $"uuid={vm}");
        await _lab.AssertWriteSequenceIntactAsync(Path.Combine(_lab.LabDirectory, "local-host3", newVdi + ".qcow2"));

        // Halted, it starts again from its new home.
        await _lab.Xe("vm-start", $"uuid={vm}");
        Assert.Equal(await HostAsync("lab-host3"), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(60), "the moved VM to boot from its new disk");
    }

    private Task<string> HostAsync(string name) => _lab.Xe("host-list", $"name-label={name}", "--minimal");

    private Task<string> StartTimeAsync(string vm) => _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=start-time");
}
