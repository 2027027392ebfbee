namespace Corral.Hypervisor.Qemu;

public sealed class QemuOptions
{
    public string QemuBinary { get; set; } = "qemu-system-x86_64";

    /// <summary>One directory per running VM (sockets, pidfile, console log); on tmpfs it vanishes at reboot, as running VMs do.</summary>
    public string RuntimeDirectory { get; set; } = "/run/corral/vms";

    /// <summary>Where the accelerator decision is remembered.</summary>
    public string StateDirectory { get; set; } = "/var/lib/corral/qemu";

    /// <summary>A bootable guest image used to prove KVM works before trusting it.</summary>
    public string? ProbeImagePath { get; set; }

    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>"kvm" or "tcg" to skip the probe.</summary>
    public string? ForceAccelerator { get; set; }

    /// <summary>How long a guest agent report stays fresh enough to trust the agent with a shutdown.</summary>
    public TimeSpan GuestAgentFreshness { get; set; } = TimeSpan.FromSeconds(10);
}
