using System.Diagnostics;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Corral.Hypervisor.Qemu.Tests;

public sealed class DirectIoTests : IDisposable
{
    private readonly string _dir = Path.Combine("/tmp", "cq-" + Guid.NewGuid().ToString("N")[..8]);

    public DirectIoTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Files_on_a_file_system_without_o_direct_get_the_page_cache()
    {
        // procfs refuses O_DIRECT (EINVAL), as older tmpfs and some FUSE mounts do.
        Assert.False(DirectIo.CanOpenDirect("/proc/version"));
        Assert.False(DirectIo.Supported("/proc/version", "raw"));
        Assert.False(DirectIo.Supported(Path.Combine(_dir, "missing.qcow2"), "qcow2"));
    }

    [QemuFact]
    public async Task A_qcow2_chain_is_judged_by_every_file_in_it()
    {
        var baseImage = Path.Combine(_dir, "base.qcow2");
        var overlay = Path.Combine(_dir, "overlay.qcow2");
        await Corral.Platform.CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", baseImage, "16M"], CancellationToken.None);
        await QemuAvailability.CreateOverlayAsync(baseImage, overlay);
        Assert.Null(DirectIo.ReadQcow2BackingFile(baseImage));
        Assert.Equal(baseImage, DirectIo.ReadQcow2BackingFile(overlay));

        var direct = DirectIo.CanOpenDirect(baseImage);
        Assert.Equal(direct, DirectIo.Supported(overlay, "qcow2"));

        // A chain whose backing file has gone cannot be opened with O_DIRECT (nor at all).
        File.Delete(baseImage);
        Assert.False(DirectIo.Supported(overlay, "qcow2"));
    }
}

public sealed class VmProcessTableTests
{
    [Fact]
    public async Task A_pid_is_a_vms_only_while_its_command_line_names_that_vm()
    {
        var uuid = Guid.NewGuid().ToString();
        Assert.False(VmProcessTable.IsRunningVm(Environment.ProcessId, uuid));
        Assert.False(VmProcessTable.IsRunningVm(int.MaxValue, uuid));
        Assert.False(VmProcessTable.KillVm(Environment.ProcessId, uuid));

        // A real process whose argv carries "-uuid <uuid>" is recognised (a shell holding the pair as its $0 and $1; the
        // trailing "; true" keeps the shell from exec-ing sleep in its place).
        using var sleeper = Process.Start(new ProcessStartInfo("sh") { ArgumentList = { "-c", "sleep 30; true", "-uuid", uuid }, UseShellExecute = false })!;
        try
        {
            // The child may not have exec'd its final command line the instant Process.Start returns.
            await QemuRig.WaitUntilAsync(() => VmProcessTable.IsRunningVm(sleeper.Id, uuid), TimeSpan.FromSeconds(10), "the shell's command line");
            Assert.False(VmProcessTable.IsRunningVm(sleeper.Id, Guid.NewGuid().ToString()));
            Assert.True(VmProcessTable.KillVm(sleeper.Id, uuid));
            await sleeper.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(VmProcessTable.IsRunningVm(sleeper.Id, uuid));
        }
        finally
        {
            if (!sleeper.HasExited)
            {
                sleeper.Kill();
            }
        }
    }

    [Fact]
    public void Pidfiles_are_read_strictly()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "12345\n");
            Assert.Equal(12345, VmProcessTable.ReadPidFile(file));
            File.WriteAllText(file, "-1");
            Assert.Null(VmProcessTable.ReadPidFile(file));
            File.WriteAllText(file, "");
            Assert.Null(VmProcessTable.ReadPidFile(file));
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Null(VmProcessTable.ReadPidFile(file));
    }
}

public sealed class RegistrationTests
{
    [Fact]
    public void The_agent_gets_one_qemu_hypervisor_with_its_options()
    {
        var services = new ServiceCollection();
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddQemuHypervisor(o => o.RuntimeDirectory = "/tmp/cq-registration");
        using var provider = services.BuildServiceProvider();
        var hypervisor = provider.GetRequiredService<IHypervisor>();
        Assert.IsType<QemuHypervisor>(hypervisor);
        Assert.Same(hypervisor, provider.GetRequiredService<QemuHypervisor>());
        Assert.Equal("/tmp/cq-registration", provider.GetRequiredService<IOptions<QemuOptions>>().Value.RuntimeDirectory);
    }

    [Fact]
    public void Bad_options_are_refused_when_read()
    {
        var services = new ServiceCollection();
        services.AddQemuHypervisor(o => o.ForceAccelerator = "hvf");
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<QemuOptions>>().Value);
        Assert.Contains("ForceAccelerator", error.Message, StringComparison.Ordinal);
    }
}
