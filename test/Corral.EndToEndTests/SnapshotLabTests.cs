using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// Snapshots as an administrator takes them with xe, on the shared lab: a running test VM snapshotted (crash
/// consistent, then quiesced through its qemu-ga) while it goes on answering ping; the snapshots listed by
/// snapshot-list and not by vm-list; the VM reverted (it ends halted, on a fresh copy of the snapshot's disk) and
/// started again from it; the snapshots uninstalled with their disks.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class SnapshotLabTests(SharedLab shared)
{
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task A_running_vm_is_snapshotted_quiesced_reverted_and_its_snapshots_uninstalled_with_xe()
    {
        var (vm, ip) = await _shared.NewTestVmAsync("snapshot test VM", 21);
        try
        {
            await SnapshotRevertAndUninstallAsync(vm, ip);
        }
        finally
        {
            await _shared.RemoveAsync(vm);
        }
    }

    private async Task SnapshotRevertAndUninstallAsync(string vm, string ip)
    {
        var disk = await SystemDiskAsync(vm);

        // A crash-consistent snapshot of the running VM: a halted template, hidden from vm-list.
        var snapshot = await _lab.Xe("vm-snapshot", $"uuid={vm}", "new-name-label=before", "new-name-description=taken live");
        Assert.True(Guid.TryParse(snapshot, out _), snapshot);
        Assert.Equal("true", await _lab.Xe("snapshot-param-get", $"uuid={snapshot}", "param-name=is-a-snapshot"));
        Assert.Equal(vm, await _lab.Xe("snapshot-param-get", $"uuid={snapshot}", "param-name=snapshot-of"));
        Assert.Equal("taken live", await _lab.Xe("snapshot-param-get", $"uuid={snapshot}", "param-name=name-description"));
        // snapshot-info is no map parameter in xe (xapi's records.ml gives it no get_map): param-key is ignored, the whole map printed.
        Assert.Contains("disk-snapshot-type: crash_consistent", await _lab.Xe("snapshot-param-get", $"uuid={snapshot}", "param-name=snapshot-info"), StringComparison.Ordinal);
        Assert.Equal("", await _lab.Xe("vm-list", "name-label=before", "--minimal"));
        Assert.Contains(snapshot, await _lab.Xe("snapshot-list", "--minimal"), StringComparison.Ordinal);
        Assert.Equal("running", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
        var copy = await SystemDiskAsync(snapshot);
        Assert.Equal("true", await _lab.Xe("vdi-param-get", $"uuid={copy}", "param-name=is-a-snapshot"));
        Assert.Equal(disk, await _lab.Xe("vdi-param-get", $"uuid={copy}", "param-name=snapshot-of"));
        Assert.True(await LabSession.Ping(ip), "the guest runs on after its snapshot");

        // Quiesced: the guest's qemu-ga freezes its filesystems for the instant of the copy, then thaws them.
        await LabSession.Eventually(async () => (await _lab.TryXe("vm-param-get", $"uuid={vm}", "param-name=other")).Output.Contains("feature-quiesce: 1", StringComparison.Ordinal),
            TimeSpan.FromMinutes(1), "the guest agent to say it can freeze");
        var quiesced = await _lab.Xe("vm-snapshot-with-quiesce", $"uuid={vm}", "new-name-label=quiesced");
        Assert.Contains("disk-snapshot-type: quiesced", await _lab.Xe("snapshot-param-get", $"uuid={quiesced}", "param-name=snapshot-info"), StringComparison.Ordinal);
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(30), "the thawed guest to answer ping");

        // Revert: the VM is stopped, ends halted on a new copy of the snapshot's disk, and boots from it.
        await _lab.Xe("snapshot-revert", $"snapshot-uuid={snapshot}");
        Assert.Equal("halted", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
        var reverted = await SystemDiskAsync(vm);
        Assert.NotEqual(disk, reverted);
        Assert.Equal("false", await _lab.Xe("vdi-param-get", $"uuid={reverted}", "param-name=is-a-snapshot"));
        Assert.Equal(reverted, await _lab.Xe("vdi-param-get", $"uuid={copy}", "param-name=snapshot-of"));
        Assert.Equal(snapshot, await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=parent"));
        await _lab.Xe("vm-start", $"uuid={vm}");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromMinutes(2), $"the reverted VM to answer ping at {ip}");

        // Uninstalled: the snapshots and the disks they own go; the VM's own disk stays.
        foreach (var s in new[] { snapshot, quiesced })
        {
            var owned = await SystemDiskAsync(s);
            await _lab.Xe("snapshot-uninstall", $"snapshot-uuid={s}", "--force");
            Assert.False((await _lab.TryXe("vdi-param-get", $"uuid={owned}", "param-name=uuid")).Code == 0, $"the snapshot's disk {owned} is destroyed");
        }

        Assert.Equal("", await _lab.Xe("snapshot-list", $"snapshot-of={vm}", "--minimal"));
        Assert.Equal(reverted, await SystemDiskAsync(vm));
        await _lab.Xe("vm-shutdown", $"uuid={vm}", "--force");
    }

    private async Task<string> SystemDiskAsync(string vm) =>
        await _lab.Xe("vbd-list", $"vm-uuid={vm}", "userdevice=0", "params=vdi-uuid", "--minimal");
}
