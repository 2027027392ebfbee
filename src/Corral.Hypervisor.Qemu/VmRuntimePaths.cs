namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The files of one VM's runtime directory, <c>&lt;RuntimeDirectory&gt;/&lt;vm-uuid&gt;/</c>, mode 0700: its launch spec
/// and secret files hold a CHAP LUN's password.
/// </summary>
public sealed record VmRuntimePaths(string Directory)
{
    /// <summary>The kernel's limit for a Unix socket path (sun_path is 108 bytes, one for the terminating NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    public string Qmp => Path.Combine(Directory, "qmp.sock");

    /// <summary>
    /// A second QMP monitor, never used by Corral: the agent keeps <see cref="Qmp"/> for itself, so this is the one an
    /// operator (or a failing test) looks at a running guest through, as <c>virsh qemu-monitor-command</c> allows.
    /// </summary>
    public string Monitor => Path.Combine(Directory, "monitor.sock");

    /// <summary>The serial console (ttyS0) as a socket, for an interactive console.</summary>
    public string Console => Path.Combine(Directory, "console.sock");

    /// <summary>Everything the guest wrote on its serial console, appended across boots of this process.</summary>
    public string ConsoleLog => Path.Combine(Directory, "console.log");


    /// <summary>The host end of the QEMU guest agent's port (<c>org.qemu.guest_agent.0</c>).</summary>
    public string Qga => Path.Combine(Directory, "qga.sock");

    public string Vnc => Path.Combine(Directory, "vnc.sock");

    public string PidFile => Path.Combine(Directory, "qemu.pid");

    /// <summary>A UEFI VM's variable store, QEMU's second flash device (written through as the guest changes it).</summary>
    public string Nvram => Path.Combine(Directory, "nvram.fd");

    /// <summary>A VM's vTPM: swtpm's state directory, control socket (QEMU's chardev), pidfile and log.</summary>
    public string TpmState => Path.Combine(Directory, "tpm");

    public string TpmSocket => Path.Combine(Directory, "tpm.sock");

    public string TpmPidFile => Path.Combine(Directory, "swtpm.pid");

    public string TpmLog => Path.Combine(Directory, "swtpm.log");

    /// <summary>QEMU's x509 credentials for the VM's migration and NBD streams (<see cref="QemuTlsCredentials"/>), mode 0700.</summary>
    public string Tls => Path.Combine(Directory, "tls");

    /// <summary>The CHAP password of disk <paramref name="diskIndex"/>'s iSCSI LUN, mode 0600, read by QEMU as it starts (a secret object).</summary>
    public string ChapSecret(int diskIndex) => Path.Combine(Directory, $"drive{diskIndex.ToString(System.Globalization.CultureInfo.InvariantCulture)}.chap");

    /// <summary>The launch spec, so that a restarted agent knows what it adopts.</summary>
    public string Spec => Path.Combine(Directory, "vm.json");

    public IEnumerable<string> Sockets => [Qmp, Monitor, Console, Qga, Vnc, TpmSocket];

    /// <summary>The longest socket path must fit in sun_path, or QEMU cannot bind it.</summary>
    public void EnsureSocketPathsFit()
    {
        foreach (var socket in Sockets)
        {
            if (System.Text.Encoding.UTF8.GetByteCount(socket) > MaxSocketPathBytes)
            {
                throw new VmStartException(
                    $"the socket path '{socket}' is longer than the {MaxSocketPathBytes} bytes a Unix socket allows; choose a shorter Corral:Qemu:RuntimeDirectory");
            }
        }
    }
}
