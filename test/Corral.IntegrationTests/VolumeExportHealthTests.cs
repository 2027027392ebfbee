using System.Diagnostics;
using System.Globalization;
using System.Text;
using Corral.Statefile;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// A volume export whose qemu-storage-daemon stops answering, with real daemons (Debian's qemu-storage-daemon, FUSE)
/// and short timings (reads hung after 1 s, the daemon suspected after 4 s): one that hangs while its volume answers a
/// fresh connection is made again; one whose storage answers nobody, or whose daemon was stopped on purpose, is left.
/// </summary>
public sealed class VolumeExportHealthTests : IAsyncLifetime
{
    private static readonly ExportTimings Short = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(3));
    private const long Size = 4 << 20;

    private readonly string _root = Directory.CreateTempSubdirectory("corral-export-health-").FullName;
    private readonly VolumeExports _exports = new(NullLogger<VolumeExports>.Instance, Short);
    private readonly List<string> _paths = [];
    private string? _freezer;

    [Fact]
    public async Task An_export_whose_daemon_hangs_while_its_volume_answers_others_is_made_again_after_the_patience_with_its_data()
    {
        var volume = await ExportFileAsync("hung");
        DirectFile.Write(volume.Path, 8192, Block("written before the hang"));
        var first = PidOf(volume);

        // Frozen (the cgroup freezer): not stopped by a signal, and answering nothing, as a daemon spinning in its driver.
        Freeze(first);
        var clock = Stopwatch.StartNew();
        while (PidOf(volume) == first)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), "waited 40 s for the hung export to be made again");
            await _exports.EnsureAsync(volume, default);
        }

        Assert.True(clock.Elapsed >= Short.StuckPatience, $"made again after {clock.Elapsed.TotalSeconds:F1} s, before the patience");
        var read = new byte[DirectFile.BlockSize];
        DirectFile.Read(volume.Path, 8192, read);
        Assert.StartsWith("written before the hang", Encoding.ASCII.GetString(read), StringComparison.Ordinal);

        // Thawed, the old daemon meets the kill it was sent and goes.
        Thaw();
        await WaitAsync(() => !Directory.Exists($"/proc/{first}"), "the hung daemon to go once thawed");
    }

    [Fact]
    public async Task An_export_whose_storage_answers_nobody_is_left_as_it_is_and_reported()
    {
        // QEMU's null driver answering each read after two minutes: a storage that stalled, for every connection.
        var volume = await ExportAsync("silent", $"driver=null-co,size={Size},latency-ns=120000000000");
        var first = PidOf(volume);
        var clock = Stopwatch.StartNew();
        IOException? refused = null;
        while (refused is null)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), "waited 40 s for the silent storage to be reported");
            try
            {
                await _exports.EnsureAsync(volume, default);
            }
            catch (IOException ex)
            {
                refused = ex;
            }
        }

        Assert.True(clock.Elapsed >= Short.StuckPatience, $"reported after {clock.Elapsed.TotalSeconds:F1} s, before the patience");
        Assert.Contains("has not answered", refused.Message, StringComparison.Ordinal);
        Assert.Equal(first, PidOf(volume));
    }

    [Fact]
    public async Task An_export_whose_daemon_was_stopped_on_purpose_is_left_and_answers_once_it_goes_on()
    {
        var volume = await ExportFileAsync("stopped");
        var first = PidOf(volume);
        Signal(first, "STOP");
        try
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < Short.StuckPatience + TimeSpan.FromSeconds(3))
            {
                await _exports.EnsureAsync(volume, default);
            }

            Assert.Equal(first, PidOf(volume));
        }
        finally
        {
            Signal(first, "CONT");
        }

        await _exports.EnsureAsync(volume, default);
        Assert.Equal(first, PidOf(volume));
        DirectFile.Read(volume.Path, 0, new byte[DirectFile.BlockSize]);
    }

    private async Task<VolumeExport> ExportFileAsync(string name)
    {
        var image = Path.Combine(_root, name + ".img");
        await using (var file = File.Create(image))
        {
            file.SetLength(Size);
        }

        // No lock on the image: a fresh reader opens it beside the daemon, as a second host does over NFS or iSCSI.
        return await ExportAsync(name, $"driver=raw,file.driver=file,file.filename={image},file.locking=off");
    }

    private async Task<VolumeExport> ExportAsync(string name, string blockdev)
    {
        var volume = new VolumeExport(Path.Combine(_root, name + ".export"), name, blockdev, null, Size);
        _paths.Add(volume.Path);
        await _exports.EnsureAsync(volume, default);
        Assert.True(VolumeExports.IsMounted(volume.Path));
        return volume;
    }

    private static int PidOf(VolumeExport volume) => int.Parse(File.ReadAllText(volume.Path + ".pid").Trim(), CultureInfo.InvariantCulture);

    private static byte[] Block(string text)
    {
        var block = new byte[DirectFile.BlockSize];
        Encoding.ASCII.GetBytes(text).CopyTo(block, 0);
        return block;
    }

    private void Freeze(int pid)
    {
        _freezer = Path.Combine("/sys/fs/cgroup/freezer", Path.GetFileName(_root));
        Directory.CreateDirectory(_freezer);
        File.WriteAllText(Path.Combine(_freezer, "tasks"), pid.ToString(CultureInfo.InvariantCulture));
        File.WriteAllText(Path.Combine(_freezer, "freezer.state"), "FROZEN");
    }

    private void Thaw()
    {
        if (_freezer is not null && Directory.Exists(_freezer))
        {
            File.WriteAllText(Path.Combine(_freezer, "freezer.state"), "THAWED");
        }
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private static async Task WaitAsync(Func<bool> done, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"waited 15 s for {what}");
            await Task.Delay(50);
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        Thaw();
        foreach (var path in _paths)
        {
            await _exports.StopAsync(path, default);
        }

        if (_freezer is not null && Directory.Exists(_freezer))
        {
            await WaitAsync(() => File.ReadAllText(Path.Combine(_freezer, "tasks")).Trim().Length == 0, "the freezer cgroup to empty");
            Directory.Delete(_freezer);
        }

        Directory.Delete(_root, recursive: true);
    }
}
