namespace Corral.Hypervisor;

/// <summary>
/// A VM's lease on the shared storage its disks live on: a process can run the VM only while its host holds this lease,
/// so two hosts never run the VM at once whatever the pool database says (a restored database, a second pool attached to
/// the same SR, a bug). Exclusive while the VM runs on one host; shared by the source and the destination of a live
/// migration while both QEMUs exist.
/// </summary>
/// <param name="Lockspace">The lockspace, one per shared SR (named after the SR's uuid): the hosts' delta leases.</param>
/// <param name="Resource">The lease's name within it: the VM's uuid.</param>
/// <param name="Path">The file that holds the lease: one of its own on a file SR, or the SR's lease volume as this host
/// sees it (an NFS or iSCSI SR's, exported here).</param>
/// <param name="Mode">How the process takes the lease as it starts.</param>
/// <param name="Offset">Where in <paramref name="Path"/> the lease's 1 MiB is.</param>
public sealed record VmLease(string Lockspace, string Resource, string Path, VmLeaseMode Mode = VmLeaseMode.Exclusive, long Offset = 0);

/// <summary>How a VM's process holds its <see cref="VmLease"/>.</summary>
public enum VmLeaseMode
{
    /// <summary>Alone: no other host can take the lease, shared or not. A running VM's.</summary>
    Exclusive,

    /// <summary>
    /// Shared with other holders: a live migration's source and destination both hold it so while both QEMUs exist, and
    /// no third host can take it.
    /// </summary>
    Shared,

    /// <summary>
    /// Not yet: the process is known to the lease manager and takes the lease (shared) later, before it may run the guest:
    /// a live migration's destination, at the switchover, once the source holds it shared.
    /// </summary>
    Later,
}

/// <summary>Launches a VM's process holding its <see cref="VmLease"/>: the lease is taken before the program runs.</summary>
public interface IVmLeaseLauncher
{
    /// <summary>
    /// The command that acquires <paramref name="lease"/> for a process of its own and then becomes
    /// <paramref name="program"/> (the same process: the lease is the program's, released when it exits, and its host's lease
    /// manager kills it should the host lose the lease). It fails, printing why, when another host holds the lease.
    /// </summary>
    LeasedCommand Wrap(VmLease lease, string program, IReadOnlyList<string> arguments);

    /// <summary>What a failed launch printed, said for a person (a refused lease named as such); the text itself otherwise.</summary>
    string Explain(string output);
}

/// <summary>A program, its arguments, and what its environment needs added.</summary>
public sealed record LeasedCommand(string Program, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string> Environment);
