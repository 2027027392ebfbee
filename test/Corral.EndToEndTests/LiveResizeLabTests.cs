using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// Live resize through xe, as a XenServer user does it, seen inside the lab's test guest (its serial shell): vCPUs
/// hot-plugged (vm-vcpu-hotplug) and kept across a live migration, more plugged on the new host; the memory balloon
/// (vm-memory-dynamic-range-set, vm-memory-target-set) taking memory from the guest and giving it back; the guest's disk
/// grown under it (vdi-resize online=true); each refused out of range with xapi's error.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class LiveResizeLabTests(SharedLab shared)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task A_running_guest_gets_vcpus_memory_and_disk_and_keeps_them_when_it_moves()
    {
        var (vm, _) = await _shared.NewTestVmAsync("resize test VM", 23, on: 1, tools: true, "VCPUs-max=4", "VCPUs-at-startup=1");
        try
        {
            await ResizeAsync(vm);
        }
        finally
        {
            await _shared.RemoveAsync(vm);
        }
    }

    private async Task ResizeAsync(string vm)
    {
        await LabSession.Eventually(async () => await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=PV-drivers-detected") == "true", Patience, "the guest agent");
        var allowed = await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=allowed-operations");
        Assert.Contains("changing_VCPUs_live", allowed, StringComparison.Ordinal);
        Assert.Contains("changing_dynamic_range", allowed, StringComparison.Ordinal);
        Assert.Equal("1", await GuestAsync(vm, "grep -c ^processor /proc/cpuinfo"));

        // vCPUs: 1 -> 3, recorded as xapi records them; past VCPUs-max refused.
        await _lab.Xe("vm-vcpu-hotplug", $"uuid={vm}", "new-vcpus=3");
        Assert.Equal("3", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=VCPUs-number"));
        Assert.Equal("3", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=VCPUs-at-startup"));
        await EventuallyInGuestAsync(vm, "grep -c ^processor /proc/cpuinfo", "3");
        var (code, output) = await _lab.TryXe("vm-vcpu-hotplug", $"uuid={vm}", "new-vcpus=5");
        Assert.NotEqual(0, code);
        Assert.Contains("VCPU values must satisfy", output, StringComparison.Ordinal);

        // Memory: the balloon takes a quarter, then gives it back.
        var staticMax = long.Parse(await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=memory-static-max"), CultureInfo.InvariantCulture);
        var fullKiB = long.Parse(await GuestAsync(vm, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"), CultureInfo.InvariantCulture);
        var three = staticMax / 4 * 3;
        await _lab.Xe("vm-memory-dynamic-range-set", $"uuid={vm}", $"min={staticMax / 2}", $"max={three}");
        Assert.Equal(three.ToString(CultureInfo.InvariantCulture), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=memory-dynamic-max"));
        await LabSession.Eventually(async () => long.Parse(await GuestAsync(vm, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"), CultureInfo.InvariantCulture)
            < fullKiB - (staticMax / 4 / 1024) + 2048, Patience, "the guest's MemTotal to drop by a quarter");
        Assert.InRange(long.Parse(await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=memory-actual"), CultureInfo.InvariantCulture), three - (1 << 20), three + (1 << 20));
        (code, output) = await _lab.TryXe("vm-memory-dynamic-range-set", $"uuid={vm}", $"min={staticMax}", $"max={staticMax * 2}");
        Assert.NotEqual(0, code);
        Assert.Contains("MEMORY_CONSTRAINT_VIOLATION_ORDER", output, StringComparison.Ordinal);
        await _lab.Xe("vm-memory-target-set", $"uuid={vm}", $"target={staticMax}");
        await LabSession.Eventually(async () => long.Parse(await GuestAsync(vm, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"), CultureInfo.InvariantCulture)
            == fullKiB, Patience, "the guest's MemTotal to come back");

        // Disk: the boot disk's VDI grows by 64 MiB under the guest; it never shrinks.
        var vdi = await _lab.Xe("vbd-list", $"vm-uuid={vm}", "userdevice=0", "params=vdi-uuid", "--minimal");
        var size = long.Parse(await _lab.Xe("vdi-param-get", $"uuid={vdi}", "param-name=virtual-size"), CultureInfo.InvariantCulture);
        await _lab.Xe("vdi-resize", $"uuid={vdi}", $"disk-size={size + (64L << 20)}", "online=true");
        Assert.Equal((size + (64L << 20)).ToString(CultureInfo.InvariantCulture), await _lab.Xe("vdi-param-get", $"uuid={vdi}", "param-name=virtual-size"));
        await EventuallyInGuestAsync(vm, "cat /sys/block/vda/size", ((size + (64L << 20)) / 512).ToString(CultureInfo.InvariantCulture));
        (code, output) = await _lab.TryXe("vdi-resize", $"uuid={vdi}", $"disk-size={size}", "online=true");
        Assert.NotEqual(0, code);
        Assert.Contains("The VDI is too small", output, StringComparison.Ordinal); // xe's words for VDI_TOO_SMALL

        // It moves with its three vCPUs (the destination starts with them), and takes a fourth over there.
        await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host2", "live=true");
        Assert.Equal("3", await GuestAsync(vm, "grep -c ^processor /proc/cpuinfo"));
        await _lab.Xe("vm-vcpu-hotplug", $"uuid={vm}", "new-vcpus=4");
        await EventuallyInGuestAsync(vm, "grep -c ^processor /proc/cpuinfo", "4");
        Assert.Equal(((size + (64L << 20)) / 512).ToString(CultureInfo.InvariantCulture), await GuestAsync(vm, "cat /sys/block/vda/size"));
    }

    private async Task EventuallyInGuestAsync(string vm, string command, string wanted) =>
        await LabSession.Eventually(async () => await GuestAsync(vm, command) == wanted, Patience, $"'{command}' to say {wanted}");

    /// <summary>
    /// Runs a command on the guest's serial shell, on the host its QEMU runs on, and returns its output: the answer is
    /// told from the typed line's echo by arithmetic the shell does (<c>$((1+1))</c>), and typed again if the line was lost.
    /// </summary>
    private async Task<string> GuestAsync(string vm, string command)
    {
        var host = Assert.Single(_lab.RunningCopies(vm));
        var directory = Path.Combine(_lab.RunDirectory, $"host{host}", "vms", vm);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Patience)
        {
            var tag = "RZ" + Guid.NewGuid().ToString("N")[..8];
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(directory, "console.sock")));
            await socket.SendAsync(Encoding.ASCII.GetBytes($"echo \"{tag}-$((1+1)): $({command} 2>&1 | tr '\\n' ' ') :END-$((2+2))\"\n"));
            var answer = new Regex(Regex.Escape(tag) + "-2: ([^\r\n]*) :END-4");
            for (var attempt = Stopwatch.StartNew(); attempt.Elapsed < TimeSpan.FromSeconds(5); await Task.Delay(100))
            {
                if (answer.Match(await File.ReadAllTextAsync(Path.Combine(directory, "console.log"))) is { Success: true } match)
                {
                    return match.Groups[1].Value.Trim();
                }
            }
        }

        throw new TimeoutException($"the guest did not answer '{command}'");
    }
}
