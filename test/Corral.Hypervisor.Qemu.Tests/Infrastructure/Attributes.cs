namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>A test that runs real QEMU processes; skipped, with the reason, where QEMU is not installed.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (QemuAvailability.Reason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// A test that boots the project's guest images under real QEMU; skipped, with the reason, only when QEMU is missing or the
/// images are neither built nor buildable (no guest/build-image.sh).
/// </summary>
public sealed class GuestImageFactAttribute : FactAttribute
{
    public GuestImageFactAttribute()
    {
        if (GuestImages.UnavailableReason() is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>VM boots share two CPUs with everything else; one at a time keeps them comparable and the machine responsive.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class QemuVmCollection
{
    public const string Name = "QEMU VMs";
}
