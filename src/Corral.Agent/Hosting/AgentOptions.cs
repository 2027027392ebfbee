using System.Net;

namespace Corral.Agent.Hosting;

/// <summary>The agent's own settings (section <c>Corral:Agent</c>).</summary>
public sealed class AgentOptions
{
    /// <summary>The host's name_label and hostname.</summary>
    public string HostName { get; set; } = Environment.MachineName;

    /// <summary>The address other hosts and clients reach this host's API at.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>Where the host keeps its identity and counters across restarts.</summary>
    public string StateDirectory { get; set; } = "/var/lib/corral";

    /// <summary>The pool's name when this host creates a new pool.</summary>
    public string PoolName { get; set; } = "Corral pool";

    /// <summary>The root password set when this host creates a new pool (ignored when joining an existing one).</summary>
    public string? InitialRootPassword { get; set; }

    /// <summary>Directory holding the guest images (guest/build) that back the built-in templates, if any.</summary>
    public string? GuestImageDirectory { get; set; }

    /// <summary>Directory for the template library SR (must be visible to every host at the same path).</summary>
    public string? TemplateLibraryDirectory { get; set; }

    /// <summary>Memory this host offers to VMs; 0 means the machine's physical memory.</summary>
    public long MemoryTotalBytes { get; set; }

    /// <summary>How long a clean shutdown may take before it fails (or falls back to hard, for VM.shutdown).</summary>
    public TimeSpan CleanShutdownTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>How long VBD.unplug and VIF.unplug wait for the guest to release the device before DEVICE_DETACH_REJECTED.</summary>
    public TimeSpan DeviceUnplugTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>What is wrong with these settings, each naming its setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(HostName))
        {
            problems.Add("Corral:Agent:HostName must not be empty");
        }

        // host.address, as xapi's: the management IP address, which other hosts and the certificate use.
        if (!IPAddress.TryParse(Address, out _))
        {
            problems.Add($"Corral:Agent:Address must be this host's management IP address, not '{Address}'");
        }

        if (!Path.IsPathFullyQualified(StateDirectory))
        {
            problems.Add($"Corral:Agent:StateDirectory must be an absolute path, not '{StateDirectory}'");
        }

        if (MemoryTotalBytes < 0)
        {
            problems.Add($"Corral:Agent:MemoryTotalBytes must be 0 (the machine's memory) or a number of bytes, not {MemoryTotalBytes}");
        }

        foreach (var (setting, value) in new[] { ("CleanShutdownTimeout", CleanShutdownTimeout), ("DeviceUnplugTimeout", DeviceUnplugTimeout) })
        {
            if (value <= TimeSpan.Zero)
            {
                problems.Add($"Corral:Agent:{setting} must be positive, not {value}");
            }
        }

        return problems;
    }
}
