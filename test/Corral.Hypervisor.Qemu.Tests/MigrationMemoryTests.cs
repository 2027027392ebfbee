using System.Globalization;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A live migration under TCG delivers every guest write. The guest runs a shell that keeps writing the same pages
/// without a system call while it moves at 4 MB/s (several passes over its memory); once the migration completed, the
/// source's RAM is final (its guest is stopped) and the destination's still untouched (its QEMU waits with -S), so the
/// two must be equal byte for byte. Debian 12's QEMU 7.2 loses such writes unless the guest's RAM is sized as
/// <see cref="QemuCommandLine.NeedsPageByPageDirtySync"/> says (bench/tcg-migration-ram.py shows both).
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class MigrationMemoryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [GuestImageFact]
    public async Task A_guest_live_migrated_while_it_writes_arrives_with_every_write()
    {
        await using var rig = new QemuRig(output);
        var source = rig.NewHypervisor();
        var destinationRoot = Path.Combine(rig.Root, "vms-dest");
        var destination = rig.NewHypervisor(o =>
        {
            o.RuntimeDirectory = destinationRoot;
            o.ExtraArgs.Add("-S");
        });
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["writing"], await GuestShell.RunAsync(sender, paths.ConsoleLog,
            " (i=0; while :; do i=$((i+1)); done) >/dev/null 2>&1 & echo writing", TimeSpan.FromSeconds(60)));

        var port = QemuRig.FreePort();
        await destination.StartAsync(spec with { IncomingMigration = $"tcp:127.0.0.1:{port}" }, CancellationToken.None);
        await sender.StartMigrationAsync($"tcp:127.0.0.1:{port}", new MigrationTuning(TimeSpan.FromMilliseconds(300), 4_000_000, AutoConverge: true),
            CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover", Patience);
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.Completed, "completed", Patience);

        var sent = await SaveRamAsync(paths.Monitor, Path.Combine(rig.Root, "source.ram"));
        var arrived = await SaveRamAsync(new VmRuntimePaths(Path.Combine(destinationRoot, spec.VmUuid)).Monitor, Path.Combine(rig.Root, "destination.ram"));
        var lost = DifferingPages(sent, arrived);
        Assert.True(lost.Count == 0, $"{lost.Count} pages differ after the migration, first at guest-physical " +
                                     string.Join(", ", lost.Take(8).Select(p => "0x" + (p * 4096L).ToString("x", CultureInfo.InvariantCulture))));
    }

    /// <summary>The guest's RAM, saved by QEMU itself (QMP <c>pmemsave</c> over Corral's second monitor socket).</summary>
    private static async Task<string> SaveRamAsync(string monitor, string file)
    {
        await using var qmp = await QmpClient.ConnectAsync(monitor, CancellationToken.None);
        var size = (await qmp.ExecuteAsync("query-memory-size-summary", null, CancellationToken.None))!["base-memory"]!.GetValue<long>();
        await qmp.ExecuteAsync("pmemsave", new JsonObject { ["val"] = 0, ["size"] = size, ["filename"] = file }, CancellationToken.None);
        return file;
    }

    /// <summary>Pages (4 KiB) that differ, from 1 MiB up: below lie the BIOS's areas and the legacy VGA window.</summary>
    private static List<long> DifferingPages(string a, string b)
    {
        var left = File.ReadAllBytes(a);
        var right = File.ReadAllBytes(b);
        Assert.Equal(left.Length, right.Length);
        var pages = new List<long>();
        for (var page = 256; page < left.Length / 4096; page++)
        {
            if (!left.AsSpan(page * 4096, 4096).SequenceEqual(right.AsSpan(page * 4096, 4096)))
            {
                pages.Add(page);
            }
        }

        return pages;
    }
}
