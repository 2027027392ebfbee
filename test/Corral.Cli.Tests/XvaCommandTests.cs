using Corral.Model;

namespace Corral.Cli.Tests;

/// <summary>xe vm-export and vm-import: the task made for the transfer, the HTTP request under it, and what they print (xapi's cli_operations).</summary>
public sealed class XvaCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("corral-xe-xva-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static CannedPool Pool(Dictionary<string, object?> task) => CannedPool.Standard()
        .Answer("task.create", "OpaqueRef:task").Answer("task.get_record", task).Answer("task.destroy").Answer("task.get_status", task["status"])
        .Answer("VM.get_uuid", "new-uuid");

    private static Dictionary<string, object?> Succeeded(string result = "") => new() { ["status"] = "success", ["progress"] = 1.0, ["result"] = result };

    [Fact]
    public async Task Vm_export_fetches_the_vm_under_a_task_of_its_own_into_the_file_and_says_so()
    {
        var pool = Pool(Succeeded());
        pool.Download = [1, 2, 3];
        var file = Path.Combine(_directory, "web.xva");

        var (code, output, err) = await pool.RunAsync("vm-export", "vm=v-2", $"filename={file}", "compress=zstd");

        Assert.Equal((0, "Export succeeded\n", ""), (code, output, err));
        Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(file));
        Assert.Contains("task.create(Export of VM, v-2)", pool.CallLog);
        Assert.Equal(["GET /export?session_id=OpaqueRef%3Asession&task_id=OpaqueRef%3Atask&ref=OpaqueRef%3Avm2&use_compression=zstd&preserve_power_state=false"], pool.Transfers);
        Assert.Contains("task.destroy(OpaqueRef:task)", pool.CallLog);
    }

    [Fact]
    public async Task Vm_import_sends_the_file_into_the_sr_and_prints_the_new_vms_uuid()
    {
        var pool = Pool(Succeeded("<value><array><data><value>OpaqueRef:new-vm</value></data></array></value>"));
        var file = Path.Combine(_directory, "in.xva");
        await File.WriteAllBytesAsync(file, [9, 8, 7]);

        var (code, output, err) = await pool.RunAsync("vm-import", $"filename={file}", "sr-uuid=s-1", "preserve=true");

        Assert.Equal((0, "new-uuid\n", ""), (code, output, err));
        Assert.Equal([9, 8, 7], pool.Uploaded);
        Assert.Equal(["PUT /import?session_id=OpaqueRef%3Asession&task_id=OpaqueRef%3Atask&sr_id=OpaqueRef%3Asr1&restore=true&force=false"], pool.Transfers);
        Assert.Contains("VM.get_uuid(OpaqueRef:new-vm)", pool.CallLog);
    }

    [Fact]
    public async Task A_failed_task_is_the_commands_error_and_an_export_leaves_no_file()
    {
        var failed = new Dictionary<string, object?> { ["status"] = "failure", ["progress"] = 0.0, ["error_info"] = new List<object?> { ErrorCodes.ImportErrorPrematureEof } };
        var pool = Pool(failed);
        var file = Path.Combine(_directory, "in.xva");
        await File.WriteAllBytesAsync(file, [1]);
        var (code, _, err) = await pool.RunAsync("vm-import", $"filename={file}");
        Assert.Equal(1, code);
        Assert.Contains(ErrorCodes.ImportErrorPrematureEof, err, StringComparison.Ordinal);
        Assert.Contains("sr_id=OpaqueRef%3Asr1", pool.Transfers.Single(), StringComparison.Ordinal); // the pool's default SR

        var export = Path.Combine(_directory, "out.xva");
        (code, _, _) = await Pool(failed).RunAsync("vm-export", "vm=v-2", $"filename={export}");
        Assert.Equal(1, code);
        Assert.False(File.Exists(export));
    }
}
