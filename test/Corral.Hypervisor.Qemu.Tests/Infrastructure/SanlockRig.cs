using System.Diagnostics;
using System.Globalization;
using Corral.Leases.Sanlock;
using Microsoft.Extensions.Options;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>
/// Two hosts' sanlock daemons (Debian's), each with a run directory of its own under the rig's root, joined as host ids 1
/// and 2 to one lockspace on a file there, with an I/O timeout of 1 s (joins take about 3 s). Disposal stops the daemons
/// by pid.
/// </summary>
public sealed class SanlockRig : IAsyncDisposable
{
    public const string Lockspace = "corral-test";

    private readonly List<Process> _daemons = [];

    private SanlockRig(string root) => Root = root;

    public string Root { get; }

    public string LockspacePath => Path.Combine(Root, "lockspace");

    public SanlockClient Host1 { get; private set; } = null!;

    public SanlockClient Host2 { get; private set; } = null!;

    public static async Task<SanlockRig> StartAsync(string root)
    {
        var rig = new SanlockRig(Path.Combine(root, "sanlock"));
        Directory.CreateDirectory(rig.Root);
        rig.Host1 = rig.StartDaemon(1);
        rig.Host2 = rig.StartDaemon(2);
        await using (var file = new FileStream(rig.LockspacePath, FileMode.CreateNew))
        {
            file.SetLength(1 << 20);
        }

        Check(await rig.Host1.InitLockspaceAsync(Lockspace, rig.LockspacePath, CancellationToken.None), "init the lockspace");
        var joins = new[] { rig.Host1.AddLockspaceAsync(Lockspace, 1, rig.LockspacePath, CancellationToken.None), rig.Host2.AddLockspaceAsync(Lockspace, 2, rig.LockspacePath, CancellationToken.None) };
        foreach (var join in await Task.WhenAll(joins))
        {
            Check(join, "join the lockspace");
        }

        return rig;
    }

    /// <summary>A VM's lease in the lockspace, its file written free.</summary>
    public async Task<VmLease> NewLeaseAsync(string vmUuid)
    {
        var lease = new VmLease(Lockspace, vmUuid, Path.Combine(Root, vmUuid));
        await using (var file = new FileStream(lease.Path, FileMode.CreateNew))
        {
            file.SetLength(1 << 20);
        }

        Check(await Host1.InitResourceAsync(lease, CancellationToken.None), "init the lease");
        return lease;
    }

    private SanlockClient StartDaemon(int host)
    {
        var (daemon, client) = Corral.IntegrationTests.SanlockDaemon.Start(Path.Combine(Root, $"run{host.ToString(CultureInfo.InvariantCulture)}"), $"test-host{host}");
        _daemons.Add(daemon);
        return client;
    }

    private static void Check(SanlockResult result, string what) => Assert.True(result.Succeeded, $"sanlock could not {what}: {result.Output}");

    public ValueTask DisposeAsync()
    {
        foreach (var daemon in _daemons)
        {
            if (!daemon.HasExited)
            {
                daemon.Kill();
                daemon.WaitForExit(5000);
            }

            daemon.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
