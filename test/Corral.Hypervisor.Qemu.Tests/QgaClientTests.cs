using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// <see cref="QgaClient"/> against Debian's real QEMU guest agent (<c>qemu-ga</c> from <c>qemu-guest-agent</c>), run
/// on this machine listening on a Unix socket, in a network namespace of its own with one card (a tap) of a known MAC and
/// addresses, so that what it reports is known. Only read-only commands are left enabled in it: it runs on the test
/// machine itself, not in a guest.
/// </summary>
public sealed class QgaClientTests : IAsyncLifetime
{
    private static readonly string[] ReadOnly =
    [
        "guest-sync-delimited", "guest-sync", "guest-ping", "guest-info", "guest-get-osinfo", "guest-network-get-interfaces",
        "guest-get-fsinfo", "guest-get-users", "guest-get-host-name", "guest-get-time", "guest-get-timezone",
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("corral-qga-").FullName;
    private Process? _agent;

    private string Socket => Path.Combine(_dir, "qga.sock");

    public async Task InitializeAsync()
    {
        var all = await RunAsync("qemu-ga", "-b", "help");
        var blocked = all.Split(['\n', ' '], StringSplitOptions.RemoveEmptyEntries).Where(rpc => !ReadOnly.Contains(rpc)).ToList();
        Assert.Contains("guest-shutdown", blocked);
        var script = string.Join("; ",
            "ip link set lo up",
            "ip tuntap add corral0 mode tap",
            "ip link set corral0 address 52:54:00:C0:41:07",
            "ip addr add 192.0.2.7/24 dev corral0",
            "ip addr add 198.51.100.9/25 dev corral0",
            "ip -6 addr add 2001:db8::7/64 dev corral0 nodad",
            "ip link set corral0 up",
            $"exec qemu-ga -m unix-listen -p {_dir}/qga.sock -t {_dir} -f {_dir}/qga.pid -b {string.Join(',', blocked)}");
        _agent = Process.Start(new ProcessStartInfo("unshare", ["--net", "sh", "-c", script]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        for (var i = 0; i < 100 && !File.Exists(Socket); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(File.Exists(Socket), "qemu-ga did not listen: " + (_agent.HasExited ? await _agent.StandardError.ReadToEndAsync() : "still starting"));
    }

    public async Task DisposeAsync()
    {
        if (_agent is { HasExited: false })
        {
            _agent.Kill();
            await _agent.WaitForExitAsync();
        }

        _agent?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return output;
    }

    [Fact]
    public async Task The_agent_says_what_it_is_and_which_commands_it_has()
    {
        await using var agent = await QgaClient.ConnectAsync(Socket, default);
        var info = await QgaQueries.InfoAsync(agent, default);
        Assert.Matches(@"^\d+\.\d+\.\d+", info.Version);
        Assert.True(info.Has("guest-get-osinfo"));
        Assert.False(info.Has("guest-shutdown"));
        Assert.True(info.Commands.ContainsKey("guest-shutdown"));

        var error = await Assert.ThrowsAsync<QgaException>(() => agent.ExecuteAsync("guest-shutdown", null, QgaQueries.Timeout, default));
        Assert.Equal("CommandNotFound", error.ErrorClass);
        var unknown = await Assert.ThrowsAsync<QgaException>(() => agent.ExecuteAsync("guest-no-such-thing", null, QgaQueries.Timeout, default));
        Assert.Equal("CommandNotFound", unknown.ErrorClass);
    }

    [Fact]
    public async Task The_operating_system_is_read_from_os_release_and_uname_as_xenserver_shows_it()
    {
        await using var agent = await QgaClient.ConnectAsync(Socket, default);
        var os = await QgaQueries.OsInfoAsync(agent, default);
        var release = (await File.ReadAllTextAsync("/etc/os-release")).Split('\n');
        string Field(string name) => release.FirstOrDefault(l => l.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..].Trim('"') ?? "";
        Assert.Equal(Field("ID"), os.Id);
        Assert.Equal(Field("PRETTY_NAME"), os.PrettyName);
        Assert.Equal((await RunAsync("uname", "-r")).Trim(), os.KernelRelease);

        var xen = QgaQueries.XenOsVersion(os);
        Assert.Equal(Field("PRETTY_NAME"), xen["name"]);
        Assert.Equal(Field("ID"), xen["distro"]);
        Assert.Equal(os.KernelRelease, xen["uname"]);
        Assert.Equal(Field("VERSION_ID").Split('.')[0], xen["major"]);
    }

    [Fact]
    public async Task Addresses_are_reported_per_card_by_its_mac_as_xenserver_keys_them()
    {
        await using var agent = await QgaClient.ConnectAsync(Socket, default);
        var interfaces = await QgaQueries.InterfacesAsync(agent, default);
        var card = Assert.Single(interfaces, i => i.Name == "corral0");
        Assert.Equal("52:54:00:c0:41:07", card.HardwareAddress);
        Assert.Contains(new QgaAddress("ipv4", "192.0.2.7", 24), card.Addresses);
        Assert.Contains(new QgaAddress("ipv6", "2001:db8::7", 64), card.Addresses);

        var networks = QgaQueries.XenNetworks(interfaces, new Dictionary<string, int> { ["52:54:00:c0:41:07"] = 1 });
        Assert.Equal("192.0.2.7", networks["1/ip"]);
        Assert.Equal("192.0.2.7", networks["1/ipv4/0"]);
        Assert.Equal("198.51.100.9", networks["1/ipv4/1"]);
        Assert.Equal("2001:db8::7", networks["1/ipv6/0"]);
        Assert.DoesNotContain(networks.Keys, k => k.StartsWith("0/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stream_with_answers_nobody_waited_for_and_half_a_command_is_resynchronised()
    {
        // As after a command given up on: answers nobody reads are in the stream, and the agent's parser holds half a
        // command. The client resynchronises past both before its first command.
        var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await raw.ConnectAsync(new UnixDomainSocketEndPoint(Socket));
        await raw.SendAsync(Encoding.UTF8.GetBytes("{\"execute\":\"guest-info\"}\n{\"execute\":\"guest-get-osinfo\"}\n{\"execute\":\"guest-get-"));
        await using var agent = QgaClient.Over(raw);

        Assert.IsType<JsonObject>(await agent.ExecuteAsync("guest-ping", null, QgaQueries.Timeout, default));
        Assert.True((await QgaQueries.InfoAsync(agent, default)).Has("guest-info"));
        Assert.NotEmpty((await QgaQueries.OsInfoAsync(agent, default)).KernelRelease);
        Assert.All(await QgaQueries.UsersAsync(agent, default), u => Assert.NotEmpty(u.Name));
    }
}
