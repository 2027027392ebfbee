using System.Globalization;
using Corral.Cli.Records;

namespace Corral.Cli.Operations;

/// <summary>
/// A VM's vCPUs and memory changed, running or halted: vm-vcpu-hotplug, vm-memory-dynamic-range-set, vm-memory-target-set
/// (xe's, with its parameters; vdi-resize online=true is with the storage commands).
/// </summary>
public static class VmResizeCommands
{
    private const CommandFlags VmStandard = CommandFlags.Standard | CommandFlags.VmSelectors;

    public static void Register(CommandRegistry r)
    {
        r.Add(new("vm-vcpu-hotplug", ["new-vcpus"], [], "Dynamically adjust the number of VCPUs available to running VM.", VmStandard, (c, ct) =>
        {
            var text = c.Params.Required("new-vcpus");
            var nvcpu = long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                ? n : throw new XeFailure("Failed to parse parameter 'new-vcpus': expecting an integer");
            return Selection.ForVmsAsync(c, ["new-vcpus"], vm => c.CallAsync("VM.set_VCPUs_number_live", ct, vm.Ref, nvcpu), ct);
        }));
        r.Add(new("vm-memory-dynamic-range-set", ["min", "max"], [],
            "Configure the dynamic memory range of a VM. The dynamic memory range defines soft lower and upper limits for a VM's memory. It's possible to change these fields when a VM is running or halted. The dynamic range must fit within the static range.",
            VmStandard, (c, ct) =>
            {
                var min = XeValues.ParseBytes("min", c.Params.Required("min"));
                var max = XeValues.ParseBytes("max", c.Params.Required("max"));
                return Selection.ForVmsAsync(c, ["min", "max"], vm => c.CallAsync("VM.set_memory_dynamic_range", ct, vm.Ref, min, max), ct,
                    includeControlDomains: true, includeTemplates: true);
            }));
        // xe sets the target as a dynamic range of one value, as XenServer's does.
        r.Add(new("vm-memory-target-set", ["target"], [],
            "Set the memory target for a halted or running VM. The given value must be within the range defined by the VM's memory_static_min and memory_static_max values.",
            VmStandard, (c, ct) =>
            {
                var target = XeValues.ParseBytes("target", c.Params.Required("target"));
                return Selection.ForVmsAsync(c, ["target"], vm => c.CallAsync("VM.set_memory_dynamic_range", ct, vm.Ref, target, target), ct,
                    includeControlDomains: true);
            }));
    }
}
