namespace Corral.Hypervisor.Qemu;

/// <summary>How VMs are run with QEMU on this host (configuration section <c>Corral:Qemu</c>).</summary>
public sealed class QemuOptions
{
    public string QemuBinary { get; set; } = "qemu-system-x86_64";

    /// <summary>The TPM emulator a VM's vTPM runs in (Debian's swtpm).</summary>
    public string SwtpmBinary { get; set; } = "swtpm";

    /// <summary>The UEFI firmware UEFI VMs boot (Debian's ovmf), read-only.</summary>
    public string OvmfCode { get; set; } = "/usr/share/OVMF/OVMF_CODE_4M.fd";

    /// <summary>The empty UEFI variable store a UEFI VM's first boot starts from (Debian's ovmf).</summary>
    public string OvmfVars { get; set; } = "/usr/share/OVMF/OVMF_VARS_4M.fd";

    /// <summary>
    /// The variable store a Secure Boot VM's first boot starts from: Debian's ovmf store with Microsoft's keys enrolled
    /// and Secure Boot on; the same size as <see cref="OvmfVars"/>, for the same firmware.
    /// </summary>
    public string OvmfSecureBootVars { get; set; } = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

    /// <summary>
    /// One directory per running VM (sockets, pidfile, console log, vm.json); on tmpfs it vanishes at reboot, as running VMs
    /// do. Unix socket paths are limited to 107 bytes, so this path must stay under about 50 characters.
    /// </summary>
    public string RuntimeDirectory { get; set; } = "/run/corral/vms";

    /// <summary>Where the accelerator decision is remembered (<c>accelerator.json</c>).</summary>
    public string StateDirectory { get; set; } = "/var/lib/corral/qemu";

    /// <summary>
    /// A bootable guest image with virtio drivers that prints <c>CORRAL-GUEST-READY</c> on its serial port, used to prove
    /// KVM works with a real boot before trusting it. Without one, VMs run under TCG.
    /// </summary>
    public string? ProbeImagePath { get; set; }

    /// <summary>How long the KVM probe boot may take before KVM is declared unusable.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>"kvm" or "tcg" to skip the probe; null or empty to probe.</summary>
    public string? ForceAccelerator { get; set; }

    /// <summary>Extra arguments appended to every VM's QEMU command line (after Corral's own).</summary>
    public IList<string> ExtraArgs { get; } = [];

    /// <summary>
    /// Host page cache use for virtual disks: "auto" (cache=none, i.e. O_DIRECT, where the image and its backing files
    /// allow it, which keeps shared storage coherent for live migration; writeback elsewhere), "none" or "writeback".
    /// </summary>
    public string DiskCache { get; set; } = "auto";

    /// <summary>How long QEMU may take to initialize (open disks, bind sockets) before the start is abandoned.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a guest agent report stays fresh enough to trust the agent with a shutdown or reboot.</summary>
    public TimeSpan GuestAgentFreshness { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the QEMU guest agent is asked about the guest (its OS, its addresses); under <see cref="GuestAgentFreshness"/>.</summary>
    public TimeSpan GuestAgentPollInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long KillAsync waits after QMP <c>quit</c> before SIGKILL.</summary>
    public TimeSpan QuitGracePeriod { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// The serial console log's size at which it is set aside (as <c>console.log.1</c>, replacing the previous one) and
    /// started afresh: the runtime directory is RAM-backed, and a guest writes to its serial port as fast as it likes.
    /// </summary>
    public long ConsoleLogMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// The pool CA's certificate, and this host's certificate of that CA with its key (PEM files; the agent points them
    /// at its <c>etcd-tls</c> files). QEMU's migration streams and NBD exports use them for TLS (<see cref="QemuTlsCredentials"/>);
    /// while any of them is missing, those streams are plain TCP.
    /// </summary>
    public string TlsCaCertificateFile { get; set; } = "";

    public string TlsCertificateFile { get; set; } = "";

    public string TlsKeyFile { get; set; } = "";

    /// <summary>
    /// The pool's certificate revocation list (PEM, signed by the pool's CA; the agent points it at its <c>etcd-tls</c>
    /// one). Each QEMU's credentials take a copy (<c>ca-crl.pem</c>), so that a revoked certificate is refused at the
    /// handshake, as etcd refuses it. Optional: without it, any certificate of the pool's CA is taken.
    /// </summary>
    public string TlsRevocationListFile { get; set; } = "";

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (GuestAgentPollInterval < TimeSpan.FromMilliseconds(100) || GuestAgentPollInterval * 2 > GuestAgentFreshness)
        {
            problems.Add("Corral:Qemu:GuestAgentPollInterval must be at least 0.1 s and at most half of GuestAgentFreshness, or a live agent would look stale");
        }

        if (ConsoleLogMaxBytes < 64 * 1024)
        {
            problems.Add("Corral:Qemu:ConsoleLogMaxBytes must be at least 64 KiB, or a boot's messages would not fit");
        }

        return problems;
    }
}
