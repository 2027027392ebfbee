using Corral.Cli.Output;

namespace Corral.Cli.Tests;

public class ErrorTextTests
{
    [Fact]
    public void A_known_error_prints_its_description_then_one_line_per_parameter()
    {
        Assert.Equal(
            "You attempted an operation on a VM that was not in an appropriate power state at the time; for example, you attempted to start a VM that was already running. The parameters returned are the VM's handle, and the expected and actual VM state at the time of the call.\n" +
            "vm: 0b1e (web)\nexpected: halted\nactual: running",
            ErrorText.Render("VM_BAD_POWER_STATE", ["0b1e (web)", "halted", "running"]));
    }

    [Fact]
    public void Missing_and_extra_parameters_are_marked()
    {
        Assert.Equal("The uuid you supplied was invalid.\ntype: VM\nuuid: <unknown>", ErrorText.Render("UUID_INVALID", ["VM"]));
        Assert.Equal("The uuid you supplied was invalid.\ntype: VM\nuuid: u\n<extra>: x", ErrorText.Render("UUID_INVALID", ["VM", "u", "x"]));
    }

    [Fact]
    public void An_error_without_a_description_prints_code_and_parameters()
    {
        Assert.Equal("Error code: VM_START_FAILED\nError parameters: OpaqueRef:v, qemu said no", ErrorText.Render("VM_START_FAILED", ["OpaqueRef:v", "qemu said no"]));
        Assert.Equal("Error code: MESSAGE_PARAMETER_COUNT_MISMATCH\nError parameters: VM.start, 3, 2", ErrorText.Render("MESSAGE_PARAMETER_COUNT_MISMATCH", ["VM.start", "3", "2"]));
    }

    [Fact]
    public void Cli_errors_render_in_xe_words()
    {
        Assert.Equal("Unknown command: vm-frobnicate\nFor usage run: 'xe help'", XeUsageError.UnknownCommand("vm-frobnicate").Render());
        Assert.Equal("Required parameter not found: uuid\nFor usage run: 'xe help'", XeUsageError.RequiredParameter("uuid").Render());
        Assert.Equal("Error: No matching VMs found", new XeFailure("No matching VMs found").Render());
        Assert.Equal("Error code: Missing parameter\nError parameters: frob", new XeMissingParameter("frob").Render());
        Assert.Equal("operation failed on u1: boom\noperation failed on u2: bang", new XeMultipleFailure([("u1", "boom"), ("u2", "bang")]).Message);
    }
}
