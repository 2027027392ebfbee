using Corral.Agent.Vms;
using Corral.Api.LiveResize;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests;

/// <summary>Live resize: xapi's argument rules and errors, and what a VM's process needs on a migration's destination.</summary>
public sealed class LiveResizeRulesTests
{
    private static XenApiException Refusal(Action check) => Assert.Throws<XenApiException>(check);

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(5)]
    public void VCPU_counts_outside_one_to_VCPUs_max_are_xapis_INVALID_VALUE(long nvcpu)
    {
        var error = Refusal(() => LiveResizeRules.CheckVcpus(nvcpu, 4));
        Assert.Equal([ErrorCodes.InvalidValue, "VCPU values must satisfy: 0 < VCPUs ≤ VCPUs_max", nvcpu.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            error.ErrorDescription);
    }

    [Fact]
    public void VCPU_counts_from_one_to_VCPUs_max_pass()
    {
        LiveResizeRules.CheckVcpus(1, 4);
        LiveResizeRules.CheckVcpus(4, 4);
    }

    [Theory]
    [InlineData(64, 128, 256, 256)]
    [InlineData(128, 128, 128, 128)]
    public void An_ordered_dynamic_range_passes(long smin, long dmin, long dmax, long smax) => LiveResizeRules.CheckDynamicRange(smin, dmin, dmax, smax);

    [Theory]
    [InlineData(128, 64, 256, 256)] // dynamic_min below static_min
    [InlineData(64, 200, 100, 256)] // min above max
    [InlineData(64, 128, 512, 256)] // dynamic_max above static_max
    public void A_dynamic_range_out_of_order_is_MEMORY_CONSTRAINT_VIOLATION_ORDER(long smin, long dmin, long dmax, long smax) =>
        Assert.Equal([ErrorCodes.MemoryConstraintViolationOrder], Refusal(() => LiveResizeRules.CheckDynamicRange(smin, dmin, dmax, smax)).ErrorDescription);

    [Fact]
    public void The_balloon_goes_to_the_top_of_the_range_and_a_direct_target_stays_inside_it()
    {
        Assert.Equal(256, LiveResizeRules.BalloonTarget(128, 256));
        LiveResizeRules.CheckTarget(200, 128, 256);
        Assert.Equal(ErrorCodes.MemoryConstraintViolationOrder, Refusal(() => LiveResizeRules.CheckTarget(300, 128, 256)).ErrorDescription[0]);
        Assert.Equal(ErrorCodes.MemoryConstraintViolationOrder, Refusal(() => LiveResizeRules.CheckTarget(64, 128, 256)).ErrorDescription[0]);
    }

    [Fact]
    public void A_disk_grows_or_stays_and_never_shrinks()
    {
        LiveResizeRules.CheckResize("OpaqueRef:v", 1 << 20, 1 << 20);
        LiveResizeRules.CheckResize("OpaqueRef:v", 1 << 20, 2 << 20);
        Assert.Equal([ErrorCodes.VdiTooSmall, "OpaqueRef:v", "1048576"], Refusal(() => LiveResizeRules.CheckResize("OpaqueRef:v", 1 << 20, 4096)).ErrorDescription);
    }

    private static VmLaunchSpec Spec(int vcpus = 2) => new("6f1c2a3b-0000-4000-8000-000000000001", "vm", 256L << 20, vcpus, true,
        [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true)], [], new Dictionary<string, string>());

    [Fact]
    public void The_command_line_has_room_for_vcpus_a_balloon_beside_the_agent_channel_and_pinned_disk_queues()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec() with { MaxVcpus = 4, Balloon = true }, new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("-smp 2,maxcpus=4 ", args, StringComparison.Ordinal);
        Assert.Contains("virtio-serial-pci,id=vser0,addr=0x3,multifunction=on", args, StringComparison.Ordinal);
        Assert.Contains("virtio-balloon-pci,id=balloon0,addr=0x3.1", args, StringComparison.Ordinal);
        Assert.Contains("id=vbd0,addr=0x4,num-queues=2,", args, StringComparison.Ordinal);

        // A destination after two vCPUs were plugged: the guest's four, its disk with the queues it started with.
        var moved = string.Join(' ', QemuCommandLine.Build(Spec(4) with { MaxVcpus = 4, Balloon = true, DiskQueues = 2 }, new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("-smp 4,maxcpus=4 ", moved, StringComparison.Ordinal);
        Assert.Contains("num-queues=2,", moved, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vm_of_an_older_corral_keeps_its_command_line_without_room_or_balloon()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec(), new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("-smp 2 ", args, StringComparison.Ordinal);
        Assert.DoesNotContain("balloon", args, StringComparison.Ordinal);
        Assert.DoesNotContain("multifunction", args, StringComparison.Ordinal);
        Assert.Throws<VmStartException>(() => QemuCommandLine.Build(Spec(4) with { MaxVcpus = 2 }, new VmRuntimePaths("/run/vm"), "tcg"));
    }

    [Fact]
    public void The_destination_gets_the_hardware_the_source_recorded_and_none_when_nothing_was()
    {
        var started = Spec(2) with { MaxVcpus = 4, Balloon = true };
        var recorded = VmHardware.Describe(started);
        Assert.Equal("maxcpus=4;diskqueues=2;balloon=true", recorded);
        // Two vCPUs plugged since: VCPUs_at_startup says 4.
        Assert.Equal((4, (int?)4, true, (int?)2), Facts(VmHardware.AsRecorded(Spec(4), recorded)));
        Assert.Equal((2, (int?)null, false, (int?)null), Facts(VmHardware.AsRecorded(Spec(2), null)));
    }

    private static (int, int?, bool, int?) Facts(VmLaunchSpec s) => (s.Vcpus, s.MaxVcpus, s.Balloon, s.DiskQueues);
}
