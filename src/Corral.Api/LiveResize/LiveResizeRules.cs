using System.Globalization;
using Corral.Model;

namespace Corral.Api.LiveResize;

/// <summary>
/// xapi's checks on the arguments of the live resize messages, before anything is asked of the VM's host. The power
/// state and the operations in progress are the allowed-operations rules' (checked when the VM is marked).
/// </summary>
public static class LiveResizeRules
{
    /// <summary>xenopsd's Invalid_vcpus, as xapi reports it: 0 &lt; nvcpu ≤ VCPUs_max.</summary>
    public static void CheckVcpus(long nvcpu, long vcpusMax)
    {
        if (nvcpu < 1 || nvcpu > vcpusMax)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "VCPU values must satisfy: 0 < VCPUs ≤ VCPUs_max", nvcpu.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max, or xapi's MEMORY_CONSTRAINT_VIOLATION_ORDER.</summary>
    public static void CheckDynamicRange(long staticMin, long dynamicMin, long dynamicMax, long staticMax)
    {
        if (!(staticMin <= dynamicMin && dynamicMin <= dynamicMax && dynamicMax <= staticMax))
        {
            throw new XenApiException(ErrorCodes.MemoryConstraintViolationOrder);
        }
    }

    /// <summary>
    /// The balloon's target for a dynamic range: its top. With no other VM pressing for memory (Corral reserves every
    /// VM's static_max on its host, so none does), squeezed gives a guest its dynamic_max too.
    /// </summary>
    public static long BalloonTarget(long dynamicMin, long dynamicMax) => Math.Max(dynamicMin, dynamicMax);

    /// <summary>A memory target set directly (the deprecated set_memory_target_live) lies within the dynamic range.</summary>
    public static void CheckTarget(long target, long dynamicMin, long dynamicMax)
    {
        if (target < dynamicMin || target > dynamicMax)
        {
            throw new XenApiException(ErrorCodes.MemoryConstraintViolationOrder);
        }
    }

    /// <summary>A disk only grows: a smaller size would cut off the guest's data (VDI_TOO_SMALL, with the size it has).</summary>
    public static void CheckResize(string vdiRef, long virtualSize, long size)
    {
        if (size < virtualSize)
        {
            throw new XenApiException(ErrorCodes.VdiTooSmall, vdiRef, virtualSize.ToString(CultureInfo.InvariantCulture));
        }
    }
}
