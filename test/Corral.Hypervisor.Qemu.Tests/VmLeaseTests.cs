using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Leases.Sanlock;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A VM's QEMU holds the VM's lease on shared storage through its host's sanlock daemon (two real daemons here, as two
/// hosts): a second host cannot start the VM while the first runs it, whatever told it to, and a live migration's two
/// ends share the lease while no third party can take it.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class VmLeaseTests(ITestOutputHelper output)
{
    [QemuFact]
    public async Task A_second_host_cannot_start_a_vm_whose_lease_the_first_holds()
    {
        await using var world = await TwoHosts.StartAsync(output);
        var (rig, sanlock, host1, host2, spec) = (world.Rig, world.Sanlock, world.Host1, world.Host2, world.Spec);

        var first = await host1.StartAsync(spec, CancellationToken.None);
        Assert.Equal(VmLeaseMode.Exclusive, await sanlock.Host1.HeldModeAsync(spec.Lease!, first.ProcessId, CancellationToken.None));
        AssertHeldWholeBy(1, await sanlock.Host1.ReadHoldersAsync(spec.Lease!, CancellationToken.None));

        // The other host is told to start it (a second pool on the same SR, a database restored from a backup): refused,
        // saying why, and nothing of it left running.
        var refused = await Assert.ThrowsAsync<VmStartException>(() => host2.StartAsync(spec, CancellationToken.None));
        output.WriteLine(refused.Message);
        Assert.Contains("another host holds the VM's lease", refused.Message, StringComparison.Ordinal);
        Assert.Equal([(first.ProcessId, spec.VmUuid)], rig.LiveQemus());

        // The first copy stops: its lease goes with it, and the other host may start the VM.
        await first.KillAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sanlock.Host1.ReadHoldersAsync(spec.Lease!, CancellationToken.None)).All.Any() is false,
            "the lease to be released once its QEMU is gone");
        var second = await host2.StartAsync(spec, CancellationToken.None);
        Assert.Equal(VmRunState.Running, await second.QueryStateAsync(CancellationToken.None));
        AssertHeldWholeBy(2, await sanlock.Host2.ReadHoldersAsync(spec.Lease!, CancellationToken.None));
        await second.KillAsync(CancellationToken.None);
    }

    [QemuFact]
    public async Task A_migrations_two_ends_share_the_lease_and_the_survivor_takes_it_back_whole()
    {
        await using var world = await TwoHosts.StartAsync(output);
        var (_, sanlock, host1, host2, spec) = (world.Rig, world.Sanlock, world.Host1, world.Host2, world.Spec);
        var source = await host1.StartAsync(spec, CancellationToken.None);

        // The destination's copy starts registered but without the lease: it may not take it while the source holds it whole.
        var incoming = spec with { IncomingMigration = $"tcp:127.0.0.1:{QemuRig.FreePort()}", Lease = spec.Lease! with { Mode = VmLeaseMode.Later } };
        var destination = await host2.StartAsync(incoming, CancellationToken.None);
        Assert.Null(await sanlock.Host2.HeldModeAsync(spec.Lease!, destination.ProcessId, CancellationToken.None));
        Assert.False((await sanlock.Host2.HoldAsync(incoming.Lease!, destination.ProcessId, shared: true, CancellationToken.None)).Succeeded);

        // The source shares it as the migration starts; then the destination can take it shared before its guest runs.
        Assert.True((await sanlock.Host1.HoldAsync(spec.Lease!, source.ProcessId, shared: true, CancellationToken.None)).Succeeded);
        Assert.True((await sanlock.Host2.HoldAsync(incoming.Lease!, destination.ProcessId, shared: true, CancellationToken.None)).Succeeded);
        var holders = await sanlock.Host1.ReadHoldersAsync(spec.Lease!, CancellationToken.None);
        Assert.Null(holders.ExclusiveOwner);
        Assert.Equal([1, 2], holders.SharedHolders.Order());

        // Neither may hold it whole while the other holds it at all.
        Assert.False((await sanlock.Host2.HoldAsync(incoming.Lease!, destination.ProcessId, shared: false, CancellationToken.None)).Succeeded);

        // The source's copy goes (the migration committed): the destination holds it whole again.
        await source.KillAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sanlock.Host2.HoldAsync(incoming.Lease!, destination.ProcessId, shared: false, CancellationToken.None)).Succeeded,
            "the destination to take the lease whole once the source is gone");
        AssertHeldWholeBy(2, await sanlock.Host2.ReadHoldersAsync(spec.Lease!, CancellationToken.None));
        await destination.KillAsync(CancellationToken.None);
    }

    private static void AssertHeldWholeBy(int host, LeaseHolders holders)
    {
        Assert.Equal(host, holders.ExclusiveOwner);
        Assert.Empty(holders.SharedHolders);
    }

    /// <summary>Two hosts (each a hypervisor with its own runtime directory and sanlock daemon) and a VM with a lease.</summary>
    private sealed record TwoHosts(QemuRig Rig, SanlockRig Sanlock, QemuHypervisor Host1, QemuHypervisor Host2, VmLaunchSpec Spec) : IAsyncDisposable
    {
        public static async Task<TwoHosts> StartAsync(ITestOutputHelper output)
        {
            var rig = new QemuRig(output);
            var sanlock = await SanlockRig.StartAsync(rig.Root);
            var host1 = rig.NewHypervisor(leases: new SanlockLeaseLauncher(sanlock.Host1));
            var host2 = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms2"), new SanlockLeaseLauncher(sanlock.Host2));
            var spec = rig.Spec(paravirtual: true, disks: []);
            return new TwoHosts(rig, sanlock, host1, host2, spec with { Lease = await sanlock.NewLeaseAsync(spec.VmUuid) });
        }

        public async ValueTask DisposeAsync()
        {
            await Rig.DisposeAsync();
            await Sanlock.DisposeAsync();
        }
    }
}
