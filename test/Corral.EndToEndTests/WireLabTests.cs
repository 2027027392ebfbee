using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// Issue 15: what crosses the lab's management network, captured as someone on that network would (tcpdump), holds no
/// secret, session reference, guest memory or disk content in clear: the pool-joins while the shared lab came up, then
/// a live migration and a storage live migration. Each capture also carries one needle sent in clear on purpose, which
/// its reading must find: a capture that sees nothing proves nothing.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class WireLabTests(SharedLab shared, ITestOutputHelper output)
{
    // Text the test image holds: its /init script is unpacked into the guest's memory at boot (it is gzip on the disk),
    // and its syslinux.cfg is plain on its boot partition (guest/build-image.sh, system_syslinux_cfg).
    private const string GuestMemoryText = "Corral test guest: PID 1. Loads drivers, reads its configuration from QEMU's fw_cfg";
    private const string GuestDiskText = "APPEND console=tty0 console=ttyS0,115200 quiet loglevel=3 rdinit=/init";

    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task The_pool_joins_carry_no_secret_in_clear()
    {
        var needles = new Dictionary<string, string>();
        for (var host = 1; host <= 3; host++)
        {
            foreach (var (name, secret) in WireCapture.HostSecrets(_lab, host))
            {
                needles[name] = secret;
            }
        }

        var reading = await WireCapture.ReadAsync(shared.UpCapture, needles);
        output.WriteLine(reading.Summary());

        // The joins went over this network: lab-host2's and lab-host3's members are peers of lab-host1's.
        Assert.True(reading.BytesBetween(_lab.Addresses[0], _lab.Addresses[1]) > 100_000, reading.Summary());
        Assert.True(reading.BytesBetween(_lab.Addresses[0], _lab.Addresses[2]) > 100_000, reading.Summary());
        Assert.Empty(reading.Found);
    }

    [Fact]
    public async Task Each_host_listens_only_on_the_ports_docs_security_lists()
    {
        for (var host = 1; host <= 3; host++)
        {
            var address = _lab.Addresses[host - 1];
            var (code, said) = await _lab.RunAsync("ip", "netns", "exec", _lab.Namespace(host), "ss", "-ltunHp");
            Assert.True(code == 0, said);
            var listeners = said.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Listener).Order(StringComparer.Ordinal).ToList();
            string[] documented =
            [
                $"tcp {address}:80 corral-agent", // the XenAPI over plain HTTP (what xapi serves unless https_only)
                $"tcp {address}:443 corral-agent", // the XenAPI, the console, imports and exports over HTTPS
                $"tcp {address}:2379 etcd", // the pool database's clients: TLS, a certificate of the pool's CA required
                $"tcp {address}:2380 etcd", // its peers: likewise
                "tcp 127.0.0.1:2379 etcd", // the agent's own connection to its member, on loopback (TLS all the same)
            ];
            Assert.Equal(documented.Order(StringComparer.Ordinal), listeners);
        }
    }

    [Fact]
    public void The_hosts_run_the_installed_package_with_its_configuration_files()
    {
        // ./lab build makes the Debian package and unpacks it into .build/root; each host runs its units' programs.
        var root = Path.Combine(LabSession.Repo, ".build", "root");
        var package = File.ReadAllText(Path.Combine(root, "etc", "corral", "agent.conf"));
        for (var host = 1; host <= 3; host++)
        {
            foreach (var (daemon, program) in new[] { ("agent", "agent/corral-agent"), ("fenced", "fenced/corral-fenced") })
            {
                var pid = File.ReadAllText(Path.Combine(_lab.RunDirectory, $"{daemon}-host{host}.pid")).Trim();
                Assert.Equal(Path.Combine(root, "usr", "lib", "corral", program), new FileInfo($"/proc/{pid}/exe").LinkTarget);
            }

            // Its agent.conf is the package's, with the host's own values after it.
            var config = File.ReadAllText(Path.Combine(_lab.LabDirectory, $"host{host}", "agent.conf"));
            Assert.StartsWith(package, config, StringComparison.Ordinal);
            Assert.Contains($"Corral__Agent__Address={_lab.Addresses[host - 1]}\n", config, StringComparison.Ordinal);
        }
    }

    // One line of `ss -ltunHp`: "tcp LISTEN 0 512 10.78.0.11:443 0.0.0.0:* users:(("corral-agent",pid=1,fd=256))".
    private static string Listener(string line)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var process = fields.Length > 6 && fields[6].Split('"') is { Length: > 1 } quoted ? quoted[1] : "?";
        return $"{fields[0]} {fields[4]} {process}";
    }

    [Fact]
    public async Task Migrations_and_sessions_carry_no_guest_memory_disk_or_session_in_clear()
    {
        var marks = (Memory: Marker("memory"), Moved: Marker("moved"), InClear: Marker("clear"));
        var local2 = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host2", "--minimal");
        var local3 = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host3", "--minimal");
        TestVm? onShared = null, onLocal = null;
        try
        {
            onShared = await shared.NewTestVmAsync("wire test VM", 31, on: 1, tools: true, $"xenstore-data:vm-data/hostname={marks.Memory}");
            onLocal = await InstallOnAsync(local2, 32, marks.Moved);
            await _lab.Xe("vm-start", $"uuid={onLocal.Uuid}", "on=lab-host2");
            await LabSession.Eventually(() => LabSession.Ping(onLocal.Ip), TimeSpan.FromSeconds(90), "the VM on lab-host2's local SR to answer ping");
            var vdi = await _lab.Xe("vbd-list", $"vm-uuid={onLocal.Uuid}", "type=Disk", "params=vdi-uuid", "--minimal");
            await MigrateAndReadAsync(onShared.Uuid, onLocal.Uuid, $"vdi:{vdi}={local3}", marks);
        }
        finally
        {
            foreach (var vm in new[] { onShared, onLocal }.OfType<TestVm>())
            {
                await shared.RemoveAsync(vm.Uuid);
            }
        }
    }

    private async Task MigrateAndReadAsync(string onShared, string onLocal, string diskMap, (string Memory, string Moved, string InClear) marks)
    {
        var capture = await WireCapture.StartAsync(_lab, "shared-migrations");
        string session;
        try
        {
            // A session over HTTPS, used; the needle in clear over plain HTTP; two VMs' memory and a disk moved.
            using var api = WireCapture.HttpsClient(_lab, 1);
            await api.LoginAsync("root", _lab.Password);
            session = api.Session;
            await api.CallWithSessionAsync("VM.get_all_records");
            await WireCapture.SendInClearAsync(_lab.Addresses[0], marks.InClear);
            await _lab.Xe("vm-migrate", $"uuid={onShared}", "host=lab-host2", "live=true");
            await _lab.Xe("vm-migrate", $"uuid={onLocal}", "host=lab-host3", diskMap);
            await api.CallWithSessionAsync("session.logout");
        }
        finally
        {
            await capture.StopAsync();
        }

        Assert.Equal("lab-host2", await ResidentOnAsync(onShared));
        Assert.Equal("lab-host3", await ResidentOnAsync(onLocal));
        var needles = WireCapture.HostSecrets(_lab, 1);
        needles["the session's reference"] = session;
        needles["the first VM's host name (in its memory)"] = marks.Memory;
        needles["the second VM's host name (in its memory)"] = marks.Moved;
        needles["the guests' /init (in their memory)"] = GuestMemoryText;
        needles["the guest's syslinux.cfg (on its disk)"] = GuestDiskText;
        needles["the needle sent in clear"] = marks.InClear;
        var reading = await WireCapture.ReadAsync(capture.File, needles);
        output.WriteLine(reading.Summary());

        // The capture saw both migrations (a guest's memory; memory and a whole disk) and the needle sent in clear.
        Assert.True(reading.BytesBetween(_lab.Addresses[0], _lab.Addresses[1]) > 1_000_000, reading.Summary());
        Assert.True(reading.BytesBetween(_lab.Addresses[1], _lab.Addresses[2]) > 10_000_000, reading.Summary());
        Assert.True(reading.Saw("the needle sent in clear"), "the capture did not see what was sent in clear: " + reading.Summary());
        var leaks = reading.FoundBesides("the needle sent in clear");
        Assert.True(leaks.Count == 0, "in clear on the management network:\n" + string.Join('\n', leaks));
        File.Delete(capture.File);
    }

    private static string Marker(string what) => $"wire-{what}-{Guid.NewGuid():N}"[..40];

    private async Task<TestVm> InstallOnAsync(string sr, int host, string hostName)
    {
        var subnet = await shared.VmSubnetAsync();
        var vm = await _lab.Xe("vm-install", "template=Corral Linux test", "new-name-label=wire test VM (local)", $"sr-uuid={sr}");
        await _lab.Xe("vm-param-set", $"uuid={vm}", $"xenstore-data:vm-data/ip={subnet}.{host}/24", $"xenstore-data:vm-data/gateway={subnet}.1",
            $"xenstore-data:vm-data/hostname={hostName}");
        return new TestVm(vm, $"{subnet}.{host}");
    }

    private async Task<string> ResidentOnAsync(string vm) =>
        await _lab.Xe("host-param-get", $"uuid={await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on")}", "param-name=name-label");
}
