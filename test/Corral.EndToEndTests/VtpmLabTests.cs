using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// A vTPM through the lab, with xe as a user drives it: <c>xe vtpm-create</c> on a halted test VM of its own (a second refused),
/// its swtpm running on the VM's host while the VM runs there and nowhere else, the TPM's state saved to the VTPM
/// (xe's <c>secret</c> field: the contents' size), kept across a live migration without losing a ping and across a
/// shutdown, and <c>xe vtpm-destroy</c> refused without <c>--force</c>.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class VtpmLabTests(SharedLab shared)
{
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task A_vm_gets_a_vtpm_whose_swtpm_runs_where_the_vm_runs_and_whose_state_is_kept()
    {
        var (vm, ip) = await _shared.InstallTestVmAsync("vTPM test VM", 22);
        try
        {
            await CreateMigrateAndDestroyAsync(vm, ip);
        }
        finally
        {
            await _shared.RemoveAsync(vm);
        }
    }

    private async Task CreateMigrateAndDestroyAsync(string vm, string ip)
    {
        var vtpm = await _lab.Xe("vtpm-create", $"vm-uuid={vm}");
        Assert.Equal(vtpm, await _lab.Xe("vtpm-list", $"vm-uuid={vm}", "--minimal"));
        var (second, why) = await _lab.TryXe("vtpm-create", $"vm-uuid={vm}");
        Assert.NotEqual(0, second);
        Assert.Contains("VTPM_MAX_AMOUNT_REACHED", why, StringComparison.Ordinal);
        Assert.Equal("size=0 bytes", SizeOf(await _lab.Xe("vtpm-param-get", $"uuid={vtpm}", "param-name=secret")));

        await _lab.Xe("vm-start", $"uuid={vm}", "on=lab-host1");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), "the VM with its vTPM");
        Assert.Equal([1], SwtpmHosts(vm));
        // The guest's kernel starts the TPM at boot, which makes its seeds; the host saves the state within 30 s.
        await LabSession.Eventually(async () => SizeOf(await _lab.Xe("vtpm-param-get", $"uuid={vtpm}", "param-name=secret")) != "size=0 bytes",
            TimeSpan.FromSeconds(75), "the vTPM's state saved to its contents");

        using (var ping = Pinger.Start(ip))
        {
            await Task.Delay(1000);
            await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host2", "live=true");
            await Task.Delay(1500);
            Assert.Equal(0, await ping.StopAsync());
        }

        await LabSession.Eventually(() => Task.FromResult(SwtpmHosts(vm) is [2]), TimeSpan.FromSeconds(30), "swtpm on lab-host2 only");

        var (refused, _) = await _lab.TryXe("vtpm-destroy", $"uuid={vtpm}", "--force");
        Assert.NotEqual(0, refused); // the VM runs
        await _lab.Xe("vm-shutdown", $"uuid={vm}");
        await LabSession.Eventually(() => Task.FromResult(SwtpmHosts(vm).Count == 0), TimeSpan.FromSeconds(30), "swtpm gone with the VM");
        Assert.NotEqual("size=0 bytes", SizeOf(await _lab.Xe("vtpm-param-get", $"uuid={vtpm}", "param-name=secret")));

        // Started again, it takes its state back (swtpm reads it; the VM boots).
        await _lab.Xe("vm-start", $"uuid={vm}", "on=lab-host3");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), "the VM started again with its vTPM state");
        Assert.Equal([3], SwtpmHosts(vm));
        await _lab.Xe("vm-shutdown", $"uuid={vm}");

        var (unforced, message) = await _lab.TryXe("vtpm-destroy", $"uuid={vtpm}");
        Assert.NotEqual(0, unforced);
        Assert.Contains("must be forced", message, StringComparison.Ordinal);
        await _lab.Xe("vtpm-destroy", $"uuid={vtpm}", "--force");
        Assert.Equal("", await _lab.Xe("vtpm-list", $"vm-uuid={vm}", "--minimal"));
    }

    /// <summary>"MD5=... size=N bytes" as xe prints a VTPM's secret: its size part.</summary>
    private static string SizeOf(string secret) => secret[secret.IndexOf("size=", StringComparison.Ordinal)..].Trim();

    /// <summary>The lab hosts (1 to 3) where a live swtpm serves the VM: its pidfile in the VM's runtime directory there.</summary>
    private List<int> SwtpmHosts(string vm)
    {
        var hosts = new List<int>();
        for (var host = 1; host <= 3; host++)
        {
            var pidFile = Path.Combine(_lab.RunDirectory, $"host{host.ToString(CultureInfo.InvariantCulture)}", "vms", vm, "swtpm.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid)
                && File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains(vm, StringComparison.Ordinal))
            {
                hosts.Add(host);
            }
        }

        return hosts;
    }
}
