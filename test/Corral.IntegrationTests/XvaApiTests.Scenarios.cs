using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

public sealed partial class XvaApiTests
{
    /// <summary>
    /// Reads an XVA with Python's standard library alone (tarfile, xmlrpc.client), writes the disk the chunks make as a
    /// raw image, and prints what it found as JSON: an independent check of the format.
    /// </summary>
    private const string PythonReader = """
        import json, sys, tarfile, xmlrpc.client
        path, raw_out = sys.argv[1], sys.argv[2]
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            # ova.xml is a bare <value> (as xapi writes it): xmlrpc.client reads values inside a response's params.
            ova = tar.extractfile(members[0]).read().decode()
            (header,), _ = xmlrpc.client.loads("<methodResponse><params><param>" + ova + "</param></params></methodResponse>")
            objects = {o["id"]: o for o in header["objects"]}
            vm = next(o["snapshot"] for o in header["objects"] if o["class"] == "VM")
            vbd = next(objects[v]["snapshot"] for v in vm["VBDs"] if objects[v]["snapshot"]["type"] == "Disk")
            vdi = objects[vbd["VDI"]]
            size = int(vdi["snapshot"]["virtual_size"])
            data = bytearray(size)
            names = [m.name for m in members]
            chunks = 0
            for i, m in enumerate(members):
                if m.name.startswith(vdi["id"] + "/") and "." not in m.name.split("/")[1]:
                    assert names[i + 1] == m.name + ".xxhash", names[i + 1]
                    n = int(m.name.split("/")[1])
                    data[n * 1048576:n * 1048576 + m.size] = tar.extractfile(m).read()
                    chunks += 1
            with open(raw_out, "wb") as f:
                f.write(data)
            vtpm = next(o["snapshot"] for o in header["objects"] if o["class"] == "VTPM")
            print(json.dumps({
                "first": names[0], "classes": sorted({o["class"] for o in header["objects"]}),
                "export_vsn": int(header["version"]["export_vsn"]), "name": vm["name_label"], "power_state": vm["power_state"],
                "nvram": vm["NVRAM"]["EFI-variables"], "tpm": vtpm["vTPM'_content"], "tpm_vm": vtpm["vTPM'_VM"], "vm_id": next(i for i, o in objects.items() if o["class"] == "VM"),
                "chunks": chunks}))
        """;

    private async Task<JsonElement> ReadWithPythonAsync(string xva, string rawOut)
    {
        var script = Path.Combine(pool.Root, "xva_reader.py");
        await File.WriteAllTextAsync(script, PythonReader);
        return JsonDocument.Parse(await Run("python3", script, xva, rawOut)).RootElement;
    }

    private static Dictionary<string, object?> AsMap(object? value) => (Dictionary<string, object?>)value!;

    [Fact]
    public async Task A_halted_vm_exported_and_imported_is_a_new_vm_with_the_same_disk_bytes_nvram_and_tpm()
    {
        var (sr, directory) = await SrAsync();
        var (vm, vdi, vtpm) = await VmAsync(sr, "exported");
        var uuid = await UuidOf(vm);

        var (status, exportTask, xva) = await ExportAsync($"session_id={pool.Session}&uuid={uuid}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("success", (string)(await pool.S("task.get_status", exportTask))!);
        Assert.Empty(AsMap(await pool.S("VM.get_current_operations", vm)));

        // The format, as Python's standard library reads it.
        var raw = Path.Combine(pool.Root, "from-python.raw");
        var found = await ReadWithPythonAsync(xva, raw);
        Assert.Equal("ova.xml", found.GetProperty("first").GetString());
        Assert.Equal(["SR", "VBD", "VDI", "VIF", "VM", "VTPM", "network"], found.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!));
        Assert.Equal(2, found.GetProperty("export_vsn").GetInt32());
        Assert.Equal(("exported", "Halted", "dWVmaSB2YXJpYWJsZXM="), (found.GetProperty("name").GetString(), found.GetProperty("power_state").GetString(), found.GetProperty("nvram").GetString()));
        Assert.Equal(Convert.ToBase64String("swtpm state of the exported VM"u8.ToArray()), found.GetProperty("tpm").GetString());
        Assert.Equal(found.GetProperty("vm_id").GetString(), found.GetProperty("tpm_vm").GetString());
        Assert.Equal(3, found.GetProperty("chunks").GetInt32()); // chunks 0, 3 and 7 hold data; the zero chunks are left out
        await Run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, await PathOf(vdi));

        // Imported into the same SR: a new VM, halted, with new uuids everywhere and the same contents.
        var files = Directory.GetFiles(directory).Order().ToList();
        var (importStatus, importTask, body) = await ImportAsync($"session_id={pool.Session}&sr_id={sr}", await File.ReadAllBytesAsync(xva));
        Assert.True(importStatus == HttpStatusCode.OK, body);
        var result = (string)(await pool.S("task.get_result", importTask))!;
        var imported = Assert.Single(Refs().Matches(result)).Value;
        Assert.StartsWith("<value><array><data><value>OpaqueRef:", result, StringComparison.Ordinal);
        var copy = await Record("VM", imported);
        Assert.NotEqual(uuid, (string)copy["uuid"]!);
        Assert.Equal(("exported", "Halted"), ((string)copy["name_label"]!, (string)copy["power_state"]!));
        Assert.Equal("dWVmaSB2YXJpYWJsZXM=", AsMap(copy["NVRAM"])["EFI-variables"]);
        Assert.Equal("uefi", AsMap(copy["HVM_boot_params"])["firmware"]);
        Assert.NotEqual("3f1d7a0e-0000-4000-8000-00000000abcd", AsMap(copy["other_config"])["mac_seed"]);

        var vbds = await Task.WhenAll(((List<object?>)copy["VBDs"]!).Select(v => Record("VBD", (string)v!)));
        Assert.True((bool)vbds.Single(v => (string)v["type"]! == "CD")["empty"]!);
        var newVdi = (string)vbds.Single(v => (string)v["type"]! == "Disk")["VDI"]!;
        var newVdiRecord = await Record("VDI", newVdi);
        Assert.Equal((sr, DiskSize, "exported disk"), ((string)newVdiRecord["SR"]!, (long)newVdiRecord["virtual_size"]!, (string)newVdiRecord["name_label"]!));
        Assert.NotEqual((string)(await Record("VDI", vdi))["uuid"]!, (string)newVdiRecord["uuid"]!);
        await Run("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", await PathOf(vdi), await PathOf(newVdi));

        var vif = await Record("VIF", (string)((List<object?>)copy["VIFs"]!).Single()!);
        var originalVif = await Record("VIF", (string)((List<object?>)(await Record("VM", vm))["VIFs"]!).Single()!);
        Assert.Equal(originalVif["network"], vif["network"]); // matched by name: no new network
        Assert.NotEqual("02:00:00:12:34:56", (string)vif["MAC"]!);

        var newVtpm = (string)((List<object?>)copy["VTPMs"]!).Single()!;
        Assert.NotEqual((string)(await Record("VTPM", vtpm))["uuid"]!, (string)(await Record("VTPM", newVtpm))["uuid"]!);
        Assert.Equal(await VtpmRecords.ContentsAsync(pool.Database, vtpm, default), await VtpmRecords.ContentsAsync(pool.Database, newVtpm, default));

        // The new volume is the only new file: no raw image or partial volume left in the SR.
        var added = Directory.GetFiles(directory).Except(files).ToList();
        Assert.Equal([Path.GetFileName(await PathOf(newVdi))], added.Select(Path.GetFileName));
        Assert.DoesNotContain(Directory.GetFiles(directory), f => f.EndsWith(".raw", StringComparison.Ordinal) || f.EndsWith(".partial", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Http_basic_credentials_export_gzip_and_an_import_that_fails_leaves_nothing()
    {
        var (sr, directory) = await SrAsync();
        var (vm, _, _) = await VmAsync(sr, "basic");
        var uuid = await UuidOf(vm);

        // As curl -u root:pw: HTTP Basic in place of a session; wrong credentials are 401, a read-only session 403.
        var basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("root:pw"u8.ToArray()));
        var (status, _, gz) = await ExportAsync($"uuid={uuid}&use_compression=gzip", basic);
        Assert.Equal(HttpStatusCode.OK, status);
        var archive = await File.ReadAllBytesAsync(gz);
        Assert.Equal([0x1f, 0x8b], archive[..2]);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ExportAsync($"uuid={uuid}", new AuthenticationHeaderValue("Basic", Convert.ToBase64String("root:wrong"u8.ToArray())))).Status);
        var tx = new PoolTransaction();
        var reader = tx.Create(XenClasses.SessionSchema);
        reader.Set(XenApi.Session.LastActive, DateTime.UtcNow);
        reader.Set(XenApi.Session.AuthUserName, "reader");
        reader.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([RoleTable.FindByNameLabel("read-only")!.Ref]));
        await pool.Database.CommitAsync(tx, default);
        Assert.Equal(HttpStatusCode.Forbidden, (await ExportAsync($"session_id={reader.Ref}&uuid={uuid}")).Status);

        // curl -u root:pw, as an administrator fetches it.
        var curled = Path.Combine(pool.Root, "curl.xva");
        Assert.Equal("200", await Run("curl", "-sS", "-u", "root:pw", "-o", curled, "-w", "%{http_code}", new Uri(_http.BaseAddress!, $"/export?uuid={uuid}").ToString()));
        Assert.Equal("basic", (await ReadWithPythonAsync(curled, Path.Combine(pool.Root, "curl.raw"))).GetProperty("name").GetString());

        // Python reads the gzip archive too.
        var found = await ReadWithPythonAsync(gz, Path.Combine(pool.Root, "gz.raw"));
        Assert.Equal("basic", found.GetProperty("name").GetString());

        // A truncated upload, and restore=true (of the gzip archive) over a VM that is not older: refused, nothing left behind.
        var (plainStatus, _, plain) = await ExportAsync($"uuid={uuid}", basic);
        Assert.Equal(HttpStatusCode.OK, plainStatus);
        var plainArchive = await File.ReadAllBytesAsync(plain);
        var vmsBefore = (await pool.Database.GetAllAsync(XenClasses.VM, default)).Count;
        var vdisBefore = (await pool.Database.GetAllAsync(XenClasses.VDI, default)).Count;
        var files = Directory.GetFiles(directory).Order().ToList();
        var (cutStatus, cutTask, cutBody) = await ImportAsync($"session_id={pool.Session}&sr_id={sr}", plainArchive[..(plainArchive.Length / 2)]);
        Assert.Equal(HttpStatusCode.InternalServerError, cutStatus);
        Assert.StartsWith(ErrorCodes.ImportErrorPrematureEof, cutBody, StringComparison.Ordinal);
        Assert.Equal([ErrorCodes.ImportErrorPrematureEof], ((List<object?>)(await pool.S("task.get_error_info", cutTask))!).Cast<string>());
        var (restoreStatus, _, restoreBody) = await ImportAsync($"session_id={pool.Session}&sr_id={sr}&restore=true", archive);
        Assert.Equal(HttpStatusCode.InternalServerError, restoreStatus);
        Assert.StartsWith("VM_TO_IMPORT_IS_NOT_NEWER_VERSION " + vm, restoreBody, StringComparison.Ordinal);
        Assert.Equal(vmsBefore, (await pool.Database.GetAllAsync(XenClasses.VM, default)).Count);
        Assert.Equal(vdisBefore, (await pool.Database.GetAllAsync(XenClasses.VDI, default)).Count);
        Assert.Equal(files, Directory.GetFiles(directory).Order().ToList());
    }

    [Fact]
    public async Task A_running_vm_is_refused_and_a_vm_being_exported_is_marked_and_cannot_start()
    {
        var (sr, _) = await SrAsync();
        var (vm, _, _) = await VmAsync(sr, "busy", size: 96L << 20, fill: true);
        var uuid = await UuidOf(vm);

        // Held in the middle of its disk: the client reads nothing past the headers, so the server waits to write.
        using (var response = await _http.GetAsync($"/export?session_id={pool.Session}&uuid={uuid}", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(["export"], AsMap(await pool.S("VM.get_current_operations", vm)).Values.Cast<string>());
            Assert.Equal(ErrorCodes.OtherOperationInProgress, (await pool.Fails("VM.start", vm, false, false)).Code);
            await using var body = await response.Content.ReadAsStreamAsync();
            await body.CopyToAsync(Stream.Null);
        }

        for (var i = 0; i < 50 && AsMap(await pool.S("VM.get_current_operations", vm)).Count > 0; i++)
        {
            await Task.Delay(100);
        }

        Assert.Empty(AsMap(await pool.S("VM.get_current_operations", vm)));

        await pool.Database.UpdateAsync([(XenClasses.VM, vm)], (objs, tx) =>
        {
            var running = objs[0].Clone();
            running.Set(XenApi.VM.PowerState, VmPowerState.Running);
            tx.Update(running);
        }, default);
        var (status, task, file) = await ExportAsync($"session_id={pool.Session}&uuid={uuid}");
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.StartsWith($"{ErrorCodes.VmBadPowerState} {vm}", Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)), StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.VmBadPowerState, ((List<object?>)(await pool.S("task.get_error_info", task))!).Cast<string>().First());
    }
}
