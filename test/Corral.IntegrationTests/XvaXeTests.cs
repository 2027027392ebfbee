using Corral.Api.Client;
using Corral.Cli;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>xe vm-export and vm-import, Corral's xe against the real handlers: the file written, the new VM's uuid printed, a snapshot exported by its uuid, a failure said as xapi's error.</summary>
public sealed partial class XvaApiTests
{
    private async Task<(int Code, string Out, string Err)> XeAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var home = Path.Combine(pool.Root, "xe-home");
        Directory.CreateDirectory(home);
        var app = new XeApplication(stdout, stderr, new StringReader(""), endpoint => new JsonRpcXenApiClient(endpoint), name => name == "HOME" ? home : null);
        var code = await app.RunAsync(["-s", _http.BaseAddress!.Host, "-p", _http.BaseAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--nossl",
            "-u", "root", "-pw", "pw", .. args], CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Xe_exports_a_vm_and_a_snapshot_to_files_and_imports_them_printing_the_new_uuids()
    {
        var (sr, _) = await SrAsync();
        var (vm, vdi, _) = await VmAsync(sr, "xe exported");
        var uuid = await UuidOf(vm);
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var file = Path.Combine(pool.Root, "xe.xva");

        Assert.Equal((0, "Export succeeded\n", ""), await XeAsync("vm-export", $"vm={uuid}", $"filename={file}", "compress=zstd"));
        Assert.Equal([0x28, 0xb5, 0x2f, 0xfd], (await File.ReadAllBytesAsync(file))[..4]);
        Assert.DoesNotContain(await pool.Database.GetAllAsync(XenClasses.Task, default), t => t.Get(XenApi.Task.NameLabel) == "Export of VM"); // xe's task, destroyed

        var (code, output, err) = await XeAsync("vm-import", $"filename={file}", $"sr-uuid={srUuid}");
        Assert.True(code == 0, err);
        var imported = output.Trim();
        var copy = await pool.Database.FindByUuidAsync(XenClasses.VM, imported, default);
        Assert.NotNull(copy);
        Assert.NotEqual(uuid, imported);
        Assert.Equal("xe exported", copy.Get(XenApi.VM.NameLabel));
        var newDisk = (await Task.WhenAll(copy.Get(XenApi.VM.VBDs).Select(v => pool.Database.GetAsync(XenClasses.VBD, v, default))))
            .Single(v => v.Get(XenApi.VBD.Type) == VbdType.Disk).Get(XenApi.VBD.VDI);
        await Run("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", await PathOf(vdi), await PathOf(newDisk));

        // A snapshot, named by its uuid as xe's vm= allows; imported, it is a template.
        var snapshot = (string)(await pool.S("VM.snapshot", vm, "xe snap", new List<object?>()))!;
        var snapshotFile = Path.Combine(pool.Root, "snap.xva");
        Assert.Equal((0, "Export succeeded\n", ""), await XeAsync("vm-export", $"vm={await UuidOf(snapshot)}", $"filename={snapshotFile}"));
        (code, output, err) = await XeAsync("vm-import", $"filename={snapshotFile}", $"sr-uuid={srUuid}");
        Assert.True(code == 0, err);
        var fromSnapshot = await pool.Database.FindByUuidAsync(XenClasses.VM, output.Trim(), default);
        Assert.Equal(("xe snap", true, false), (fromSnapshot!.Get(XenApi.VM.NameLabel), fromSnapshot.Get(XenApi.VM.IsATemplate), fromSnapshot.Get(XenApi.VM.IsASnapshot)));

        // A running VM: xapi's error, and no file left.
        await pool.Database.UpdateAsync([(XenClasses.VM, vm)], (objs, tx) =>
        {
            var running = objs[0].Clone();
            running.Set(XenApi.VM.PowerState, VmPowerState.Running);
            tx.Update(running);
        }, default);
        var refused = Path.Combine(pool.Root, "refused.xva");
        (code, _, err) = await XeAsync("vm-export", $"uuid={uuid}", $"filename={refused}");
        Assert.Equal(1, code);
        Assert.StartsWith("You attempted an operation on a VM that was not in an appropriate power state", err, StringComparison.Ordinal); // xe's words for VM_BAD_POWER_STATE
        Assert.False(File.Exists(refused));
    }
}
