using System.Globalization;
using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu.GuestAgent;

/// <summary>The agent itself (<c>guest-info</c>): its version, and the commands it has with whether each is enabled.</summary>
public sealed record QgaAgentInfo(string Version, IReadOnlyDictionary<string, bool> Commands)
{
    public bool Has(string command) => Commands.TryGetValue(command, out var enabled) && enabled;
}

/// <summary>The guest's operating system (<c>guest-get-osinfo</c>, from its os-release and uname); absent fields empty.</summary>
public sealed record QgaOsInfo(string KernelRelease, string KernelVersion, string Machine, string Id, string Name, string PrettyName,
    string Version, string VersionId);

/// <summary>One address of a guest network interface.</summary>
public sealed record QgaAddress(string Family, string Address, int Prefix);

/// <summary>One network interface of the guest (<c>guest-network-get-interfaces</c>), its MAC lower-case.</summary>
public sealed record QgaInterface(string Name, string? HardwareAddress, IReadOnlyList<QgaAddress> Addresses);

/// <summary>One mounted file system of the guest (<c>guest-get-fsinfo</c>), with the bus of its first disk.</summary>
public sealed record QgaFileSystem(string Name, string MountPoint, string Type, long? UsedBytes, long? TotalBytes, string? Bus, string? Device);

/// <summary>A user logged in to the guest (<c>guest-get-users</c>).</summary>
public sealed record QgaUser(string Name, string? Domain, DateTime LoginTimeUtc);

/// <summary>The standard guest agent commands Corral reads, typed. Missing or odd fields are read as empty, never as errors.</summary>
public static class QgaQueries
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static async Task<QgaAgentInfo> InfoAsync(QgaClient agent, CancellationToken cancellationToken)
    {
        var info = await agent.ExecuteAsync("guest-info", null, Timeout, cancellationToken) as JsonObject;
        var commands = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var command in (info?["supported_commands"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (Text(command, "name") is { Length: > 0 } name)
            {
                commands[name] = command["enabled"] is JsonValue v && v.TryGetValue<bool>(out var enabled) && enabled;
            }
        }

        return new QgaAgentInfo(Text(info, "version"), commands);
    }

    public static async Task<QgaOsInfo> OsInfoAsync(QgaClient agent, CancellationToken cancellationToken)
    {
        var os = await agent.ExecuteAsync("guest-get-osinfo", null, Timeout, cancellationToken) as JsonObject;
        return new QgaOsInfo(Text(os, "kernel-release"), Text(os, "kernel-version"), Text(os, "machine"), Text(os, "id"), Text(os, "name"),
            Text(os, "pretty-name"), Text(os, "version"), Text(os, "version-id"));
    }

    public static async Task<IReadOnlyList<QgaInterface>> InterfacesAsync(QgaClient agent, CancellationToken cancellationToken)
    {
        var answer = await agent.ExecuteAsync("guest-network-get-interfaces", null, Timeout, cancellationToken) as JsonArray;
        return (answer ?? []).OfType<JsonObject>().Select(i => new QgaInterface(
            Text(i, "name"),
            Text(i, "hardware-address") is { Length: > 0 } mac ? mac.ToLowerInvariant() : null,
            (i["ip-addresses"] as JsonArray ?? []).OfType<JsonObject>()
                .Select(a => new QgaAddress(Text(a, "ip-address-type"), Text(a, "ip-address"), (int)(Number(a, "prefix") ?? 0)))
                .Where(a => a.Address.Length > 0)
                .ToList())).ToList();
    }

    public static async Task<IReadOnlyList<QgaFileSystem>> FileSystemsAsync(QgaClient agent, CancellationToken cancellationToken)
    {
        var answer = await agent.ExecuteAsync("guest-get-fsinfo", null, Timeout, cancellationToken) as JsonArray;
        return (answer ?? []).OfType<JsonObject>().Select(f =>
        {
            var disk = (f["disk"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault();
            return new QgaFileSystem(Text(f, "name"), Text(f, "mountpoint"), Text(f, "type"), Number(f, "used-bytes"), Number(f, "total-bytes"),
                disk is null ? null : Text(disk, "bus-type"), disk is null ? null : Text(disk, "dev"));
        }).ToList();
    }

    public static async Task<IReadOnlyList<QgaUser>> UsersAsync(QgaClient agent, CancellationToken cancellationToken)
    {
        var answer = await agent.ExecuteAsync("guest-get-users", null, Timeout, cancellationToken) as JsonArray;
        return (answer ?? []).OfType<JsonObject>().Select(u => new QgaUser(Text(u, "user"), Text(u, "domain") is { Length: > 0 } d ? d : null,
            DateTime.UnixEpoch.AddSeconds(u["login-time"] is JsonValue t && t.TryGetValue<double>(out var s) && double.IsFinite(s) && s >= 0 ? s : 0))).ToList();
    }

    /// <summary>
    /// How long the guest has been up, from its <c>/proc/uptime</c> read through the agent's file commands (open, read,
    /// close: nothing is written); null when the agent has them disabled or the guest has no such file (Windows).
    /// </summary>
    public static async Task<TimeSpan?> UptimeAsync(QgaClient agent, QgaAgentInfo info, CancellationToken cancellationToken)
    {
        if (!info.Has("guest-file-open") || !info.Has("guest-file-read") || !info.Has("guest-file-close"))
        {
            return null;
        }

        JsonNode? handle;
        try
        {
            handle = await agent.ExecuteAsync("guest-file-open", new JsonObject { ["path"] = "/proc/uptime", ["mode"] = "r" }, Timeout, cancellationToken);
        }
        catch (QgaException)
        {
            return null;
        }

        if (handle is not JsonValue h || !h.TryGetValue<long>(out var id))
        {
            return null;
        }

        try
        {
            var read = await agent.ExecuteAsync("guest-file-read", new JsonObject { ["handle"] = id, ["count"] = 64 }, Timeout, cancellationToken)
                 as JsonObject;
            var text = System.Text.Encoding.ASCII.GetString(Convert.FromBase64String(Text(read, "buf-b64")));
            return double.TryParse(text.Split(' ', 2)[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds >= 0
                ? TimeSpan.FromSeconds(seconds)
                : null;
        }
        catch (Exception ex) when (ex is FormatException or QgaException)
        {
            return null;
        }
        finally
        {
            try
            {
                await agent.ExecuteAsync("guest-file-close", new JsonObject { ["handle"] = id }, Timeout, cancellationToken);
            }
            catch (QgaException)
            {
                // The handle is gone already (the agent restarted): nothing left open.
            }
        }
    }

    /// <summary>
    /// The addresses as XenServer's guest tools report them in <c>VM_guest_metrics.networks</c>: for the card of device
    /// number N (the VIF's <c>device</c>), <c>N/ip</c> (its first IPv4 address), <c>N/ipv4/K</c> and <c>N/ipv6/K</c>.
    /// A guest interface is matched to a card by its MAC; interfaces of no card (loopback, bridges inside the guest) are left out.
    /// </summary>
    public static IReadOnlyDictionary<string, string> XenNetworks(IReadOnlyList<QgaInterface> interfaces, IReadOnlyDictionary<string, int> deviceByMac)
    {
        var networks = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var i in interfaces)
        {
            if (i.HardwareAddress is not { } mac || !deviceByMac.TryGetValue(mac.ToLowerInvariant(), out var device))
            {
                continue;
            }

            var v4 = i.Addresses.Where(a => a.Family == "ipv4").Select(a => a.Address).ToList();
            var v6 = i.Addresses.Where(a => a.Family == "ipv6").Select(a => a.Address).ToList();
            var n = device.ToString(CultureInfo.InvariantCulture);
            if (v4.Count > 0)
            {
                networks[$"{n}/ip"] = v4[0];
            }

            for (var k = 0; k < v4.Count; k++)
            {
                networks[$"{n}/ipv4/{k}"] = v4[k];
            }

            for (var k = 0; k < v6.Count; k++)
            {
                networks[$"{n}/ipv6/{k}"] = v6[k];
            }
        }

        return networks;
    }

    /// <summary>The file systems as the VM's report carries them: the guest's device name, free space from its used space.</summary>
    public static IReadOnlyList<GuestVolume> Volumes(IReadOnlyList<QgaFileSystem> fileSystems) =>
        fileSystems.Where(f => f.MountPoint.Length > 0)
            .Select(f => new GuestVolume(f.MountPoint, f.Type, f.Name, f.TotalBytes,
                f is { TotalBytes: { } total, UsedBytes: { } used } ? Math.Max(0, total - used) : null))
            .ToList();

    /// <summary>The logged-in users as the VM's report carries them: a Windows domain user as <c>DOMAIN\name</c>.</summary>
    public static IReadOnlyList<GuestUser> Users(IReadOnlyList<QgaUser> users) =>
        users.Where(u => u.Name.Length > 0).Select(u => new GuestUser(u.Domain is { } domain ? $"{domain}\\{u.Name}" : u.Name, u.LoginTimeUtc)).ToList();

    /// <summary>The OS as XenServer's tools put it in <c>VM_guest_metrics.os_version</c>: name, uname, distro, major, minor.</summary>
    public static IReadOnlyDictionary<string, string> XenOsVersion(QgaOsInfo os)
    {
        var version = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["name"] = os.PrettyName.Length > 0 ? os.PrettyName : os.Name,
            ["uname"] = os.KernelRelease,
            ["distro"] = os.Id,
        };
        var parts = os.VersionId.Split('.', 3);
        if (parts[0].Length > 0)
        {
            version["major"] = parts[0];
            version["minor"] = parts.Length > 1 ? parts[1] : "0";
        }

        return version;
    }

    private static string Text(JsonObject? o, string name) =>
        o?[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    private static long? Number(JsonObject o, string name) =>
        o[name] is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;
}
