namespace Corral.Hypervisor;

/// <summary>A disk's byte counters since its VM process started, as the hypervisor counts the guest's requests.</summary>
/// <param name="DiskIndex">The VBD's userdevice, as in <see cref="DiskSpec.Index"/>.</param>
public sealed record DiskIoCounters(int DiskIndex, long ReadBytes, long WrittenBytes);
