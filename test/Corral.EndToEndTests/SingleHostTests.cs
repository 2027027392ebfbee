using System.Diagnostics;
using System.Text.Json;
using Corral.Model;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// One real host: a real agent, etcd and QEMU, and the guest images. Boots VMs from their own disks, pings them,
/// shuts them down, and restarts the agent under a running VM.
/// </summary>
[Trait("Lab", "single-host")]
public sealed class SingleHostTests : IAsyncLifetime
{
    private LabFixture _lab = null!;
    private JsonRpcClient _api = null!;

    public async Task InitializeAsync()
    {
        _lab = await LabFixture.StartAsync();
        _api = new JsonRpcClient(_lab.Agent.Endpoint);
        await LoginAsync();
    }

    private async Task LoginAsync()
    {
        await _api.LoginWhenReadyAsync(AgentHost.Password);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _lab.DisposeAsync();
    }

    private Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) =>
        JsonRpcClient.EventuallyAsync(probe, timeout, what, () => $"agent log: {_lab.Agent.Log}");

    private async Task<string> InstallAsync(string template, string name, string sr, string ip)
    {
        var templateRef = await EventuallyAsync(async () =>
        {
            var refs = await _api.CallWithSessionAsync("VM.get_by_name_label", template);
            return refs.GetArrayLength() > 0 ? refs[0].GetString() : null;
        }, TimeSpan.FromSeconds(120), $"template {template}");
        var vm = (await _api.CallWithSessionAsync("VM.copy", templateRef, name, sr)).GetString()!;
        await _api.CallWithSessionAsync("VM.set_is_a_template", vm, false);
        await _api.CallWithSessionAsync("VM.add_to_xenstore_data", vm, "vm-data/ip", ip + "/24");
        return vm;
    }

    private static async Task<bool> PingAsync(string ip)
    {
        using var ping = Process.Start(new ProcessStartInfo("ping", ["-c", "1", "-W", "1", ip]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await ping.WaitForExitAsync();
        return ping.ExitCode == 0;
    }

    [Fact]
    public async Task Vms_boot_from_their_disks_answer_ping_survive_an_agent_restart_and_shut_down()
    {
        var host = (await _api.CallWithSessionAsync("host.get_all"))[0].GetString()!;
        var sr = (await _api.CallWithSessionAsync("SR.create", host, new Dictionary<string, string> { ["location"] = _lab.SharedDirectory }, 0,
            "Shared storage", "", "file", "user", true, new Dictionary<string, string>())).GetString()!;

        var optimizedIp = $"{_lab.Subnet}.10";
        var emulatedIp = $"{_lab.Subnet}.11";
        var optimized = await InstallAsync("Corral Linux test", "e2e optimized", sr, optimizedIp);
        var emulated = await InstallAsync("Corral Linux test (no tools)", "e2e no tools", sr, emulatedIp);
        await Task.WhenAll(_api.CallWithSessionAsync("VM.start", optimized, false, false), _api.CallWithSessionAsync("VM.start", emulated, false, false));
        Assert.Equal("Running", (await _api.CallWithSessionAsync("VM.get_power_state", optimized)).GetString());
        Assert.Equal(host, (await _api.CallWithSessionAsync("VM.get_resident_on", optimized)).GetString());
        async Task<string> DiskDevice(string vm) =>
            (await _api.CallWithSessionAsync("VBD.get_device", (await _api.CallWithSessionAsync("VM.get_VBDs", vm))[0].GetString())).GetString()!;
        Assert.Equal("vda", await DiskDevice(optimized));
        Assert.Equal("hda", await DiskDevice(emulated));

        // The guest agent reports the address, as XenServer's tools do, into VM_guest_metrics.networks.
        var reported = await EventuallyAsync(async () =>
        {
            var gm = (await _api.CallWithSessionAsync("VM.get_guest_metrics", optimized)).GetString()!;
            var networks = await _api.CallWithSessionAsync("VM_guest_metrics.get_networks", gm);
            return networks.TryGetProperty("0/ip", out var ip) ? ip.GetString() : null;
        }, TimeSpan.FromSeconds(180), "the guest agent's report");
        Assert.Equal(optimizedIp, reported);
        var gmRef = (await _api.CallWithSessionAsync("VM.get_guest_metrics", optimized)).GetString()!;
        Assert.True((await _api.CallWithSessionAsync("VM_guest_metrics.get_PV_drivers_detected", gmRef)).GetBoolean());
        Assert.True(await EventuallyAsync(async () => await PingAsync(optimizedIp) ? (bool?)true : null, TimeSpan.FromSeconds(60), "ping of the optimized VM"));
        Assert.True(await EventuallyAsync(async () => await PingAsync(emulatedIp) ? (bool?)true : null, TimeSpan.FromSeconds(180), "ping of the emulated VM"));
        // No tools in the emulated guest: no guest metrics, which is how XenServer shows "tools not installed".
        Assert.Equal(OpaqueRef.Null, (await _api.CallWithSessionAsync("VM.get_guest_metrics", emulated)).GetString());

        // Kill the agent under the running VMs: QEMU goes on, and the restarted agent adopts it, never a second copy.
        var uuid = (await _api.CallWithSessionAsync("VM.get_uuid", optimized)).GetString()!;
        var pidsBefore = LabFixture.QemuPidsOf(uuid);
        Assert.Single(pidsBefore);
        await _lab.Agent.KillAsync();
        Assert.True(await PingAsync(optimizedIp) || await PingAsync(optimizedIp));
        _lab.Agent.Start();
        await LoginAsync();
        // Operations wait for the host to be live again (its lease renewed), as xapi's wait for a host to come back.
        await EventuallyAsync(async () =>
        {
            var metrics = (await _api.CallWithSessionAsync("host.get_metrics", host)).GetString();
            return (await _api.CallWithSessionAsync("host_metrics.get_live", metrics)).GetBoolean() ? (bool?)true : null;
        }, TimeSpan.FromSeconds(60), "the host live again after the agent restart");
        Assert.Equal("Running", (await _api.CallWithSessionAsync("VM.get_power_state", optimized)).GetString());
        Assert.Equal(pidsBefore, LabFixture.QemuPidsOf(uuid));

        // A clean shutdown through the adopted process: the guest powers off and QEMU is gone.
        await _api.CallWithSessionAsync("VM.clean_shutdown", optimized);
        Assert.Equal("Halted", (await _api.CallWithSessionAsync("VM.get_power_state", optimized)).GetString());
        Assert.Empty(LabFixture.QemuPidsOf(uuid));
        Assert.False(await PingAsync(optimizedIp));

        // ACPI shutdown of the guest without tools.
        await _api.CallWithSessionAsync("VM.clean_shutdown", emulated);
        Assert.Equal("Halted", (await _api.CallWithSessionAsync("VM.get_power_state", emulated)).GetString());

        // And back: the disk kept what the guest wrote (its boot counter) across the restart.
        await _api.CallWithSessionAsync("VM.start", optimized, false, false);
        Assert.True(await EventuallyAsync(async () => await PingAsync(optimizedIp) ? (bool?)true : null, TimeSpan.FromSeconds(180), "ping after restart"));
        var bad = await Assert.ThrowsAsync<XenApiException>(() => _api.CallWithSessionAsync("VM.start", optimized, false, false));
        Assert.Equal(ErrorCodes.VmBadPowerState, bad.Code);

        // Pause and unpause keep the one process; a clean reboot (through the guest agent) boots the guest again in it.
        await _api.CallWithSessionAsync("VM.pause", optimized);
        Assert.Equal("Paused", (await _api.CallWithSessionAsync("VM.get_power_state", optimized)).GetString());
        Assert.False(await PingAsync(optimizedIp));
        await _api.CallWithSessionAsync("VM.unpause", optimized);
        Assert.Equal("Running", (await _api.CallWithSessionAsync("VM.get_power_state", optimized)).GetString());
        var console = Path.Combine(_lab.RuntimeDirectory, uuid, "console.log");
        int Boots() => File.ReadAllText(console).Split("CORRAL-GUEST-READY").Length - 1;
        var boots = Boots();
        var pid = Assert.Single(LabFixture.QemuPidsOf(uuid));
        await _api.CallWithSessionAsync("VM.clean_reboot", optimized);
        await EventuallyAsync(() => Task.FromResult(Boots() > boots ? (bool?)true : null), TimeSpan.FromSeconds(120), "the guest to boot again");
        Assert.Equal([pid], LabFixture.QemuPidsOf(uuid));
        Assert.True(await EventuallyAsync(async () => await PingAsync(optimizedIp) ? (bool?)true : null, TimeSpan.FromSeconds(60), "ping after reboot"));
        await _api.CallWithSessionAsync("VM.hard_shutdown", optimized);
        Assert.Empty(LabFixture.QemuPidsOf(uuid));
        _ = JsonValueKind.Null;
    }
}
