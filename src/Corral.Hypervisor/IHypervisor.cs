namespace Corral.Hypervisor;

/// <summary>Which accelerator VMs run under on this host, and why.</summary>
/// <param name="Name">"kvm" or "tcg".</param>
/// <param name="Reason">How the choice was made (e.g. "KVM probe boot did not reach the guest within 20 s").</param>
public sealed record AcceleratorChoice(string Name, string Reason);

/// <summary>Runs VMs on this host. One instance per agent.</summary>
public interface IHypervisor
{
    /// <summary>Decides KVM or TCG, by a real probe boot the first time, remembered afterwards.</summary>
    Task<AcceleratorChoice> GetAcceleratorAsync(CancellationToken cancellationToken);

    /// <summary>Starts a VM process that outlives the agent (it is not the agent's child once started).</summary>
    /// <exception cref="VmStartException">QEMU refused the configuration or died while starting.</exception>
    Task<IVmProcess> StartAsync(VmLaunchSpec spec, CancellationToken cancellationToken);

    /// <summary>Finds VM processes this host started earlier (e.g. before an agent restart) and reconnects to them.</summary>
    Task<IReadOnlyList<IVmProcess>> AdoptRunningAsync(CancellationToken cancellationToken);
}

/// <summary>QEMU's own run states, as QMP's query-status reports them, folded to what the XenAPI distinguishes.</summary>
public enum VmRunState
{
    Running,
    Paused,
    ShutDown,
    Crashed,
    Migrating,
    Unknown,
}

/// <summary>What the guest agent reported last.</summary>
/// <param name="CanFreeze">The agent can freeze and thaw the guest's filesystems (quiesced snapshots).</param>
/// <param name="Volumes">The guest's mounted file systems; null when the agent does not say.</param>
/// <param name="Users">The users logged in to the guest; null when the agent does not say.</param>
public sealed record GuestAgentReport(
    string AgentVersion,
    TimeSpan Uptime,
    IReadOnlyDictionary<string, string> OsVersion,
    IReadOnlyDictionary<string, string> Networks,
    IReadOnlyDictionary<string, string> PvDrivers,
    DateTime ReceivedUtc,
    bool CanFreeze = false,
    IReadOnlyList<GuestVolume>? Volumes = null,
    IReadOnlyList<GuestUser>? Users = null);

/// <summary>One file system mounted in the guest, as its agent reports it.</summary>
/// <param name="MountPoint">Where it is mounted (<c>/</c>, <c>C:\</c>).</param>
/// <param name="FileSystem">Its type (<c>ext4</c>, <c>NTFS</c>).</param>
/// <param name="Device">The guest's name for the device it is on (<c>vda2</c>); empty when not said.</param>
/// <param name="SizeBytes">Its size; null when the agent does not know it.</param>
/// <param name="FreeBytes">The space left on it; null when the agent does not know it.</param>
public sealed record GuestVolume(string MountPoint, string FileSystem, string Device, long? SizeBytes, long? FreeBytes);

/// <summary>A user logged in to the guest (a Windows domain user as <c>DOMAIN\name</c>), since <paramref name="LoginTimeUtc"/>.</summary>
public sealed record GuestUser(string Name, DateTime LoginTimeUtc);

/// <summary>The consoles a VM process offers.</summary>
public enum VmConsoleKind
{
    /// <summary>The first serial port: text, as a vt100 terminal.</summary>
    Serial,

    /// <summary>The graphical screen, over the RFB (VNC) protocol.</summary>
    Graphical,
}

/// <summary>One running VM process, driven over QMP.</summary>
public interface IVmProcess : IAsyncDisposable
{
    string VmUuid { get; }

    int ProcessId { get; }

    /// <summary>Completes when the process has exited, for whatever reason.</summary>
    Task Exited { get; }

    /// <summary>
    /// Whether the exit was meant: Corral asked for it (shutdown request, <see cref="KillAsync"/>) or the guest powered
    /// itself off. False when QEMU died on its own (crash, out of memory, killed by someone else) or was fenced
    /// (<see cref="KillImmediately"/>): HA restarts such a protected VM.
    /// </summary>
    bool ExitIntended { get; }

    /// <summary>The guest agent's latest report, or null when no agent has spoken.</summary>
    GuestAgentReport? LatestGuestReport { get; }

    /// <summary>Raised for every guest agent report and for QMP events the agent acts on (SHUTDOWN, RESET...).</summary>
    event EventHandler<VmProcessEventArgs>? EventReceived;

    Task<VmRunState> QueryStateAsync(CancellationToken cancellationToken);

    /// <summary>Bytes read from and written to each disk of the VM so far.</summary>
    Task<IReadOnlyList<DiskIoCounters>> QueryDiskIoAsync(CancellationToken cancellationToken);

    Task PauseAsync(CancellationToken cancellationToken);

    Task ResumeAsync(CancellationToken cancellationToken);

    /// <summary>Asks the guest to shut down: through the guest agent when one is connected, else ACPI power button.</summary>
    Task RequestShutdownAsync(CancellationToken cancellationToken);

    /// <summary>Asks the guest to reboot: guest agent when connected, else a hard reset.</summary>
    Task RequestRebootAsync(CancellationToken cancellationToken);

    /// <summary>Hard reset, as pressing the reset button.</summary>
    Task ResetAsync(CancellationToken cancellationToken);

    /// <summary>Stops the process now (QMP quit, then SIGKILL if it lingers) and waits until it is gone.</summary>
    Task KillAsync(CancellationToken cancellationToken);

    /// <summary>
    /// SIGKILL at once, asking nothing of QEMU (fencing: the guest must not write another block); <see cref="Exited"/>
    /// completes when the kernel has reaped it.
    /// </summary>
    void KillImmediately();

    /// <summary>
    /// Connects to one of the VM's consoles: the serial line (a byte stream, as a terminal sees it) or the screen (an
    /// RFB/VNC stream). The caller owns the stream; closing it leaves the VM alone.
    /// </summary>
    Task<Stream> OpenConsoleAsync(VmConsoleKind kind, CancellationToken cancellationToken);

    /// <summary>The end of what the VM wrote to its serial console (at most <paramref name="maxBytes"/>), so a viewer sees the last prompt.</summary>
    Task<byte[]> ReadSerialConsoleTailAsync(int maxBytes, CancellationToken cancellationToken);

    /// <summary>
    /// A UEFI VM's variable store as it is now (once the process has ended: as it left it); null for a BIOS VM, or when
    /// it cannot be read.
    /// </summary>
    Task<byte[]?> ReadNvramAsync(CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);

    /// <summary>
    /// The vTPM's persistent state as it is now (once the process has ended: as it left it); null for a VM without a
    /// vTPM, or when it cannot be read.
    /// </summary>
    Task<byte[]?> ReadTpmStateAsync(CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);

    /// <summary>Inserts (path) or ejects (null) the medium of a CD drive.</summary>
    Task ChangeMediumAsync(int diskIndex, string? isoPath, CancellationToken cancellationToken);

    // ---- hot-plug: devices added to and removed from the running guest ----

    /// <summary>
    /// The VM's devices as they are now (those it started with, plus those plugged since, less those removed), each
    /// with its PCI slot; what a migration's destination must start with.
    /// </summary>
    VmLaunchSpec Spec { get; }

    /// <summary>
    /// Plugs a disk into the running guest and returns it as attached (its PCI slot chosen). A disk already attached at
    /// that index is returned as it is, so a resumed operation may ask again.
    /// </summary>
    /// <exception cref="DeviceHotplugException">The device model cannot take it (an IDE disk, a CD) or QEMU refused.</exception>
    Task<DiskSpec> AttachDiskAsync(DiskSpec disk, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the guest to release a disk (an ACPI eject request) and waits up to <paramref name="timeout"/>. True once it
    /// is gone and its image closed; false if the guest has not let go in time: the request stays pending, and a late
    /// release still completes the removal (raising <see cref="VmProcessEventKind.DeviceRemoved"/>). A disk not attached
    /// is gone already (true).
    /// </summary>
    Task<bool> DetachDiskAsync(int diskIndex, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Plugs a network card (its tap already made) into the running guest; idempotent as <see cref="AttachDiskAsync"/>.</summary>
    Task<NicSpec> AttachNicAsync(NicSpec nic, CancellationToken cancellationToken);

    /// <summary>Removes a network card as <see cref="DetachDiskAsync"/> removes a disk.</summary>
    Task<bool> DetachNicAsync(int nicIndex, TimeSpan timeout, CancellationToken cancellationToken);

    // ---- live resize: vCPUs, memory and disk sizes changed while the guest runs ----

    /// <summary>
    /// Plugs vCPUs into (or asks the guest to give back) the running guest until it has <paramref name="count"/>, at most
    /// <see cref="VmLaunchSpec.MaxVcpus"/>; waits up to <paramref name="timeout"/> for the guest to take each change.
    /// Returns the vCPUs the VM has now (its <see cref="Spec"/> says the same).
    /// </summary>
    /// <exception cref="DeviceHotplugException">The count is out of range, QEMU refused, or the guest kept a vCPU.</exception>
    Task<int> SetVcpusAsync(int count, TimeSpan timeout, CancellationToken cancellationToken) =>
        throw new DeviceHotplugException("this VM's process cannot change its vCPUs while it runs");

    /// <summary>Sets the memory balloon's target: the guest's memory goes to <paramref name="bytes"/> as its driver inflates or deflates.</summary>
    /// <exception cref="DeviceHotplugException">The VM has no balloon, or QEMU refused.</exception>
    Task SetMemoryTargetAsync(long bytes, CancellationToken cancellationToken) =>
        throw new DeviceHotplugException("this VM's process has no memory balloon");

    /// <summary>The memory the guest has now, as its balloon reports it; null for a VM without a balloon.</summary>
    Task<long?> QueryMemoryActualAsync(CancellationToken cancellationToken) => Task.FromResult<long?>(null);

    /// <summary>Grows a disk of the running guest (rounded up to whole sectors) and returns its size now; never shrinks it.</summary>
    /// <exception cref="DeviceHotplugException">No such disk, a smaller size, or QEMU refused.</exception>
    Task<long> ResizeDiskAsync(int diskIndex, long bytes, CancellationToken cancellationToken) =>
        throw new DeviceHotplugException("this VM's process cannot resize its disks while it runs");

    /// <summary>Starts sending this VM to a QEMU waiting at <paramref name="destinationUri"/> (<c>tcp:host:port</c>).</summary>
    Task StartMigrationAsync(string destinationUri, MigrationTuning tuning, CancellationToken cancellationToken);

    Task<MigrationProgress> QueryMigrationAsync(CancellationToken cancellationToken);

    /// <summary>Stops an outgoing migration; the VM goes on running here.</summary>
    Task CancelMigrationAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Lets a migration held at <see cref="MigrationStatus.PreSwitchover"/> finish. Migrations stop there so that the
    /// pool decides the switchover while the VM runs nowhere.
    /// </summary>
    Task ContinueMigrationAsync(CancellationToken cancellationToken);

    // ---- storage migration: the disks travel over NBD, from the source's QEMU to the destination's ----

    /// <summary>
    /// Destination side: serves the listed disks (by index) writable over NBD at <paramref name="host"/>:<paramref name="port"/>,
    /// so the source can mirror into them while this QEMU waits for the VM. Export names are the drive ids.
    /// </summary>
    Task ExportDisksAsync(string host, int port, IReadOnlyList<int> diskIndexes, CancellationToken cancellationToken);

    /// <summary>Destination side: stops serving the disks; done before the VM may start here.</summary>
    Task StopDiskExportAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Source side: starts copying a disk into the destination's export at <paramref name="nbdHost"/>:<paramref name="nbdPort"/>.
    /// Once ready, the mirror keeps the copy in step with every write until completed.
    /// </summary>
    Task StartDiskMirrorAsync(int diskIndex, string nbdHost, int nbdPort, CancellationToken cancellationToken);

    /// <summary>Source side: the disk mirrors of this process, as QEMU reports them.</summary>
    Task<IReadOnlyList<DiskMirrorState>> QueryDiskMirrorsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Source side, VM stopped: ends every mirror leaving the destination's copy complete, and returns once they all
    /// have. Throws <see cref="DiskMirrorException"/> if any failed.
    /// </summary>
    Task CompleteDiskMirrorsAsync(CancellationToken cancellationToken);

    /// <summary>Source side: stops every mirror at once; the destination's copy is left incomplete.</summary>
    Task AbandonDiskMirrorsAsync(CancellationToken cancellationToken);

    // ---- snapshots: the disks of the running VM copied as they are at one instant ----

    /// <summary>
    /// Copies the disks named into the (empty, same-sized) images given, all as they were at the same instant, while the
    /// guest runs; returns once every copy is complete. With <paramref name="quiesce"/> the guest's filesystems are frozen
    /// by its agent around that instant (and always thawed).
    /// </summary>
    /// <exception cref="GuestQuiesceException">Quiesce asked and the guest agent could not freeze.</exception>
    /// <exception cref="DiskBackupException">A copy failed (every copy is then abandoned).</exception>
    Task BackupDisksAsync(IReadOnlyList<DiskBackupTarget> targets, bool quiesce, CancellationToken cancellationToken) =>
        throw new NotSupportedException("this VM process cannot copy its disks");

    /// <summary>Ends what an interrupted <see cref="BackupDisksAsync"/> left in the process: its jobs, open images, a frozen guest.</summary>
    Task AbandonDiskBackupsAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Where one disk (by index) of a running VM is copied: an image QEMU opens in that format.</summary>
public sealed record DiskBackupTarget(int DiskIndex, string Path, string Format);

public sealed class DiskBackupException(string message) : Exception(message);

/// <summary>The guest's filesystems could not be frozen: no agent answering (<see cref="Unsupported"/>), or the freeze failed.</summary>
public sealed class GuestQuiesceException(bool unsupported, string message, Exception? inner = null) : Exception(message, inner)
{
    public bool Unsupported { get; } = unsupported;
}

/// <summary>One disk mirror (QEMU block job) on the source.</summary>
/// <param name="Length">Bytes the job has to copy (allocated data, not the virtual size); grows with new writes.</param>
/// <param name="Offset">Bytes copied so far.</param>
/// <param name="Ready">The copy has caught up; from now on writes go to both sides.</param>
/// <param name="Failed">The job ended with <paramref name="Error"/>.</param>
public sealed record DiskMirrorState(int DiskIndex, long Length, long Offset, bool Ready, bool Failed, string? Error);

public sealed class DiskMirrorException(string message) : Exception(message);

/// <summary>A hot-plug the device model cannot do (an IDE disk, a CD drive, no free PCI slot) or QEMU refused.</summary>
public sealed class DeviceHotplugException(string message, Exception? inner = null) : Exception(message, inner);

public enum VmDeviceKind
{
    Disk,
    Nic,
}

/// <summary>A device of a VM: a disk (by the VBD's userdevice) or a network card (by the VIF's device).</summary>
public sealed record VmDevice(VmDeviceKind Kind, int Index);

public enum VmProcessEventKind
{
    GuestReport,
    GuestShutdown,
    GuestReset,
    Stopped,
    Resumed,
    Exited,

    /// <summary>The guest released a device that was asked to go (<see cref="VmProcessEventArgs.Device"/>), maybe late.</summary>
    DeviceRemoved,

    /// <summary>
    /// The guest agent, which had answered, has stopped answering for longer than its freshness (stopped or hung in the
    /// guest, or the guest paused): its tools no longer count as live until it reports again.
    /// </summary>
    GuestAgentSilent,
}

public sealed class VmProcessEventArgs(VmProcessEventKind kind, string detail = "", VmDevice? device = null) : EventArgs
{
    public VmProcessEventKind Kind { get; } = kind;

    public string Detail { get; } = detail;

    public VmDevice? Device { get; } = device;
}

public sealed class VmStartException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>How a live migration is run: the pause it may cost, the bandwidth it may use, and help for busy guests.</summary>
/// <param name="DowntimeLimit">The longest pause QEMU may plan for the final copy.</param>
/// <param name="MaxBandwidthBytesPerSecond">0: unlimited.</param>
/// <param name="AutoConverge">Throttle a guest that dirties memory faster than it can be sent.</param>
public sealed record MigrationTuning(TimeSpan DowntimeLimit, long MaxBandwidthBytesPerSecond, bool AutoConverge)
{
    public static MigrationTuning Default { get; } = new(TimeSpan.FromMilliseconds(300), 0, AutoConverge: true);
}

public enum MigrationStatus
{
    None,
    Setup,
    Active,

    /// <summary>Everything but the last device state is across; the VM is stopped, waiting for the go-ahead.</summary>
    PreSwitchover,
    Completed,
    Failed,
    Cancelled,
    Other,
}

/// <summary>QEMU's <c>query-migrate</c>, on the sending side.</summary>
public sealed record MigrationProgress(
    MigrationStatus Status,
    long TotalBytes,
    long TransferredBytes,
    long RemainingBytes,
    long DowntimeMilliseconds,
    long TotalTimeMilliseconds,
    string? Error)
{
    public double Fraction => TotalBytes <= 0 ? 0 : Math.Clamp((double)TransferredBytes / TotalBytes, 0, 1);
}
