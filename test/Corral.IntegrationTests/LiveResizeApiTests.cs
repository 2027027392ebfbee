using Corral.Model;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The live resize messages through the XenAPI, on a halted VM (the running guest's side is the real-QEMU and lab
/// tests'): the dynamic range recorded and its order enforced with xapi's error, the live-only messages refused with
/// VM_BAD_POWER_STATE, a VDI never shrunk.
/// </summary>
public sealed class LiveResizeApiTests : IAsyncLifetime
{
    private ApiFixture _fixture = null!;

    public async Task InitializeAsync() => _fixture = await ApiFixture.StartAsync();

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private async Task<XenApiException> Fails(string method, params object?[] args) =>
        await Assert.ThrowsAsync<XenApiException>(() => Call(method, args));

    [Fact]
    public async Task A_halted_vms_dynamic_range_is_recorded_in_order_and_the_live_messages_want_it_running()
    {
        var s = await _fixture.LoginAsync();
        var vm = (string)(await Call("VM.create", s, new Dictionary<string, object?>
        {
            ["name_label"] = "resize", ["memory_static_max"] = "268435456", ["memory_dynamic_max"] = "268435456",
            ["memory_dynamic_min"] = "268435456", ["memory_static_min"] = "134217728", ["VCPUs_max"] = "4", ["VCPUs_at_startup"] = "1",
        }))!;

        await Call("VM.set_memory_dynamic_range", s, vm, 134217728L, 201326592L);
        Assert.Equal(("134217728", "201326592", "134217728"), (await Field(s, vm, "memory_dynamic_min"), await Field(s, vm, "memory_dynamic_max"), await Field(s, vm, "memory_target")));
        await Call("VM.set_memory_dynamic_max", s, vm, 268435456L);
        Assert.Equal("268435456", await Field(s, vm, "memory_dynamic_max"));
        Assert.Equal([ErrorCodes.MemoryConstraintViolationOrder], (await Fails("VM.set_memory_dynamic_range", s, vm, 268435456L, 134217728L)).ErrorDescription);
        Assert.Equal([ErrorCodes.MemoryConstraintViolationOrder], (await Fails("VM.set_memory_dynamic_max", s, vm, 536870912L)).ErrorDescription);
        Assert.Equal([ErrorCodes.MemoryConstraintViolationOrder], (await Fails("VM.set_memory_dynamic_min", s, vm, 67108864L)).ErrorDescription);

        Assert.Equal([ErrorCodes.VmBadPowerState, vm, "running", "halted"], (await Fails("VM.set_VCPUs_number_live", s, vm, 2L)).ErrorDescription);
        Assert.Equal([ErrorCodes.VmBadPowerState, vm, "running", "halted"], (await Fails("VM.set_memory_target_live", s, vm, 134217728L)).ErrorDescription);
        Assert.Equal("1", await Field(s, vm, "VCPUs_at_startup"));
    }

    private async Task<string> Field(string session, string vm, string field) =>
        Convert.ToString(((Dictionary<string, object?>)(await Call("VM.get_record", session, vm))!)[field], System.Globalization.CultureInfo.InvariantCulture)!;
}
