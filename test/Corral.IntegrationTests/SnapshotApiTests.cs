using System.Diagnostics;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// VM.snapshot, VDI.snapshot, VM.revert and the destruction of a snapshot on a halted VM, against the host's real
/// storage handlers and volumes (qcow2 files): the records xapi leaves, the disks' contents (written with qemu-io), the
/// files that come and go; and a snapshot whose agent died mid-copy, resumed without leftovers.
/// </summary>
public sealed class SnapshotApiTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] entries) => entries.ToDictionary(e => e.Key, e => (object?)e.Value);

    private async Task<(string Sr, string Directory)> SrAsync(string type = "file")
    {
        var directory = Path.Combine(pool.Root, "sr-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(directory);
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "snap SR", "", type, type == "iso" ? "iso" : "user", false, Map()))!;
        return (sr, directory);
    }

    /// <summary>A halted VM with one 8 MiB disk holding 'A's, a CD drive, a VIF and an NVRAM.</summary>
    private async Task<(string Vm, string Vdi)> VmAsync(string sr)
    {
        var vdi = (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["virtual_size"] = "8388608", ["name_label"] = "system", ["type"] = "user", ["other_config"] = Map(("k", "v")),
        }))!;
        await Pattern(await PathOf(vdi), 'A');
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = "snapped", ["power_state"] = "Halted", ["metrics"] = metrics.Ref, ["memory_static_max"] = 256L << 20,
            ["memory_dynamic_max"] = 256L << 20, ["memory_dynamic_min"] = 256L << 20, ["memory_static_min"] = 256L << 20, ["VCPUs_max"] = 1L, ["VCPUs_at_startup"] = 1L,
            ["NVRAM"] = Map(("EFI-variables", "c25hcHNob3Q=")), ["platform"] = Map(("secureboot", "true")), ["HVM_boot_params"] = Map(("order", "cd")),
        });
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?>
        {
            ["VM"] = vm.Ref, ["VDI"] = vdi, ["userdevice"] = "0", ["type"] = "Disk", ["mode"] = "RW", ["bootable"] = true,
        });
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["userdevice"] = "3", ["type"] = "CD", ["mode"] = "RO", ["empty"] = true });
        var network = tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?> { ["name_label"] = "net" });
        tx.Create(XenClasses.VIFSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["network"] = network.Ref, ["device"] = "0", ["MAC"] = "02:00:00:12:34:56" });
        await pool.Database.CommitAsync(tx, default);
        return (vm.Ref, vdi);
    }

    private async Task<string> PathOf(string vdi)
    {
        var record = (Dictionary<string, object?>)(await pool.S("VDI.get_record", vdi))!;
        var sr = (string)record["SR"]!;
        var pbd = (string)((List<object?>)(await pool.S("SR.get_PBDs", sr))!)[0]!;
        var config = (Dictionary<string, object?>)(await pool.S("PBD.get_device_config", pbd))!;
        return Path.Combine((string)config["location"]!, (string)record["location"]!);
    }

    /// <summary>Fills the disk's first sector with one letter, as the guest would see it.</summary>
    private static Task Pattern(string path, char letter) => Run("qemu-io", "-f", "qcow2", "-c", $"write -P {(int)letter} 0 512", path);

    private static async Task<bool> Holds(string path, char letter)
    {
        var output = await Run("qemu-io", "-f", "qcow2", "-c", $"read -P {(int)letter} 0 512", path);
        return !output.Contains("Pattern verification failed", StringComparison.Ordinal);
    }

    private static async Task<string> Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, output);
        return output;
    }

    private async Task<List<string>> Refs(string method, string self) => ((List<object?>)(await pool.S(method, self))!).Cast<string>().ToList();

    private async Task<Dictionary<string, object?>> Record(string cls, string self) => (Dictionary<string, object?>)(await pool.S($"{cls}.get_record", self))!;

    [Fact]
    public async Task A_snapshot_of_a_halted_vm_is_a_halted_template_with_copies_of_its_disks_and_the_vm_reverts_to_it()
    {
        var (sr, directory) = await SrAsync();
        var (vm, vdi) = await VmAsync(sr);
        var before = DateTime.UtcNow.AddSeconds(-2);
        var snapshot = (string)(await pool.S("VM.snapshot", vm, "snap-1", new List<object?>()))!;

        var s = await Record("VM", snapshot);
        Assert.Equal(("snap-1", true, true, vm, "Halted"), ((string)s["name_label"]!, (bool)s["is_a_snapshot"]!, (bool)s["is_a_template"]!, (string)s["snapshot_of"]!, (string)s["power_state"]!));
        Assert.InRange((DateTime)s["snapshot_time"]!, before, DateTime.UtcNow.AddSeconds(2));
        Assert.Equal("crash_consistent", ((Dictionary<string, object?>)s["snapshot_info"]!)["disk-snapshot-type"]);
        Assert.Equal("c25hcHNob3Q=", ((Dictionary<string, object?>)s["NVRAM"]!)["EFI-variables"]);
        Assert.Equal("true", ((Dictionary<string, object?>)s["platform"]!)["secureboot"]);
        Assert.Equal([snapshot], await Refs("VM.get_snapshots", vm));
        Assert.Equal(snapshot, (string)(await pool.S("VM.get_parent", vm))!);
        Assert.Equal("VM_IS_SNAPSHOT", (await pool.Fails("VM.start", snapshot, false, false)).Code);

        // Its disk: a snapshot VDI of the VM's, on the same SR, holding what the VM's held, owned by the snapshot.
        var vbds = await Refs("VM.get_VBDs", snapshot);
        Assert.Equal(2, vbds.Count);
        var diskVbd = (await Task.WhenAll(vbds.Select(v => Record("VBD", v)))).Single(v => (string)v["type"]! == "Disk");
        Assert.True(((Dictionary<string, object?>)diskVbd["other_config"]!).ContainsKey("owner"));
        var copy = (string)diskVbd["VDI"]!;
        var c = await Record("VDI", copy);
        Assert.Equal((true, vdi, sr, "system", 8388608L), ((bool)c["is_a_snapshot"]!, (string)c["snapshot_of"]!, (string)c["SR"]!, (string)c["name_label"]!, (long)c["virtual_size"]!));
        Assert.Equal("v", ((Dictionary<string, object?>)c["other_config"]!)["k"]);
        Assert.Equal([copy], await Refs("VDI.get_snapshots", vdi));
        Assert.True(await Holds(await PathOf(copy), 'A'));
        var vif = await Record("VIF", (await Refs("VM.get_VIFs", snapshot)).Single());
        Assert.Equal("02:00:00:12:34:56", vif["MAC"]);

        // The VM changes after the snapshot: its disk, its NVRAM, its name. The revert brings back what the snapshot recorded.
        await Pattern(await PathOf(vdi), 'B');
        // The variable store as the firmware left it at the VM's last shutdown (the agent writes it so).
        await pool.Database.UpdateAsync([(XenClasses.VM, vm)], (objs, tx) =>
        {
            var changed = objs[0].Clone();
            changed.Set(XenApi.VM.NVRAM, new Dictionary<string, string> { ["EFI-variables"] = "Y2hhbmdlZA==" });
            tx.Update(changed);
        }, default);
        await pool.S("VM.set_name_label", vm, "renamed");
        var oldFile = await PathOf(vdi);
        await pool.S("VM.revert", snapshot);

        var v = await Record("VM", vm);
        Assert.Equal(("snapped", "Halted", snapshot, false, false), ((string)v["name_label"]!, (string)v["power_state"]!, (string)v["parent"]!, (bool)v["is_a_snapshot"]!, (bool)v["is_a_template"]!));
        Assert.Equal("c25hcHNob3Q=", ((Dictionary<string, object?>)v["NVRAM"]!)["EFI-variables"]);
        var newDisk = (await Task.WhenAll((await Refs("VM.get_VBDs", vm)).Select(r => Record("VBD", r)))).Single(r => (string)r["type"]! == "Disk");
        var newVdi = (string)newDisk["VDI"]!;
        Assert.NotEqual(vdi, newVdi);
        Assert.Equal("HANDLE_INVALID", (await pool.Fails("VDI.get_record", vdi)).Code);
        Assert.False(File.Exists(oldFile), "the replaced disk's volume is removed");
        Assert.True(await Holds(await PathOf(newVdi), 'A'));
        Assert.False((bool)(await Record("VDI", newVdi))["is_a_snapshot"]!);
        Assert.Equal(newVdi, (string)(await Record("VDI", copy))["snapshot_of"]!);
        Assert.Equal("02:00:00:12:34:56", (await Record("VIF", (await Refs("VM.get_VIFs", vm)).Single()))["MAC"]);
        Assert.Equal(2, (await Refs("VM.get_VBDs", vm)).Count);

        // xe snapshot-uninstall: the snapshot, then its disks; the VM's parent falls back to the snapshot's.
        await pool.S("VM.destroy", snapshot);
        var copyFile = await PathOf(copy);
        await pool.S("VDI.destroy", copy);
        Assert.False(File.Exists(copyFile));
        Assert.True(OpaqueRef.IsNull((string)(await pool.S("VM.get_parent", vm))!));
        Assert.Empty(await Refs("VM.get_snapshots", vm));
        Assert.Single(Directory.GetFiles(directory, "*.qcow2"));
    }

    [Fact]
    public async Task A_snapshot_keeps_the_vms_tpm_state_of_its_time_and_a_revert_brings_it_back()
    {
        var (sr, _) = await SrAsync();
        var (vm, _) = await VmAsync(sr);
        var vtpm = (string)(await pool.S("VTPM.create", vm, false))!;
        await pool.S("VTPM.set_contents", vtpm, "dGhlbg==");
        var snapshot = (string)(await pool.S("VM.snapshot", vm, "with-tpm", new List<object?>()))!;

        // The snapshot's TPM is a copy with a secret of its own: what the VM's TPM becomes later does not reach it.
        var kept = (await Refs("VM.get_VTPMs", snapshot)).Single();
        Assert.NotEqual(vtpm, kept);
        Assert.Equal("dGhlbg==", await pool.S("VTPM.get_contents", kept));
        await pool.S("VTPM.set_contents", vtpm, "bm93");
        Assert.Equal("dGhlbg==", await pool.S("VTPM.get_contents", kept));

        // The revert: the VM's TPM goes, a copy of the snapshot's comes, with the state of the snapshot's time.
        await pool.S("VM.revert", snapshot);
        var restored = (await Refs("VM.get_VTPMs", vm)).Single();
        Assert.NotEqual(vtpm, restored);
        Assert.Equal("HANDLE_INVALID", (await pool.Fails("VTPM.get_record", vtpm)).Code);
        Assert.Equal("dGhlbg==", await pool.S("VTPM.get_contents", restored));
        await pool.S("VTPM.set_contents", restored, "YWdhaW4=");
        Assert.Equal("dGhlbg==", await pool.S("VTPM.get_contents", kept));
        Assert.Equal(snapshot, (string)(await pool.S("VTPM.get_VM", kept))!);
        Assert.Equal(vm, (string)(await pool.S("VTPM.get_VM", restored))!);

        // A unique TPM is never copied, as xapi's Xapi_vtpm.copy: a snapshot of it gets a new, empty one.
        var (other, _) = await VmAsync(sr);
        var unique = (string)(await pool.S("VTPM.create", other, true))!;
        await pool.S("VTPM.set_contents", unique, "dW5pcXVl");
        var uniqueSnapshot = (string)(await pool.S("VM.snapshot", other, "unique", new List<object?>()))!;
        Assert.Equal("", await pool.S("VTPM.get_contents", (await Refs("VM.get_VTPMs", uniqueSnapshot)).Single()));
    }

    [Fact]
    public async Task Snapshots_of_single_disks_and_the_errors_xapi_gives()
    {
        var (sr, _) = await SrAsync();
        var (vm, vdi) = await VmAsync(sr);
        var single = (string)(await pool.S("VDI.snapshot", vdi, Map()))!;
        var r = await Record("VDI", single);
        Assert.Equal((true, vdi), ((bool)r["is_a_snapshot"]!, (string)r["snapshot_of"]!));
        Assert.True(await Holds(await PathOf(single), 'A'));

        // ignore_vdis: the snapshot has no copy of that disk (its CD drive stays).
        var withoutDisk = (string)(await pool.S("VM.snapshot", vm, "no-disks", new List<object?> { vdi }))!;
        var vbds = await Task.WhenAll((await Refs("VM.get_VBDs", withoutDisk)).Select(v => Record("VBD", v)));
        Assert.Equal(["CD"], vbds.Select(v => (string)v["type"]!));

        // A halted VM cannot be quiesced; a snapshot cannot be snapshotted or started; only a snapshot is reverted to.
        Assert.Equal("VM_BAD_POWER_STATE", (await pool.Fails("VM.snapshot_with_quiesce", vm, "q")).Code);
        Assert.Equal("VM_IS_SNAPSHOT", (await pool.Fails("VM.snapshot", withoutDisk, "again", new List<object?>())).Code);
        Assert.Equal("REVERT_ONLY_ALLOWED_ON_SNAPSHOT", (await pool.Fails("VM.revert", vm)).Code);

        // An ISO library cannot snapshot its images.
        var (iso, isoDirectory) = await SrAsync("iso");
        await File.WriteAllBytesAsync(Path.Combine(isoDirectory, "x.iso"), new byte[2048]);
        await pool.S("SR.scan", iso);
        var image = (await Refs("SR.get_VDIs", iso)).Single();
        Assert.Equal(["SR_OPERATION_NOT_SUPPORTED", iso], (await pool.Fails("VDI.snapshot", image, Map())).ErrorDescription);
    }

    [Fact]
    public async Task A_snapshot_whose_agent_died_mid_copy_is_made_again_from_scratch_and_leaves_no_stray_volume()
    {
        var (sr, directory) = await SrAsync();
        var (vm, _) = await VmAsync(sr);
        var vbd = (await Task.WhenAll((await Refs("VM.get_VBDs", vm)).Select(async v => (v, await Record("VBD", v))))).Single(x => (string)x.Item2["type"]! == "Disk").v;
        var newUuid = Guid.NewGuid().ToString();
        var snapshotUuid = Guid.NewGuid().ToString();

        // What the first attempt left: a half-written volume under its temporary name.
        await File.WriteAllBytesAsync(Path.Combine(directory, newUuid + ".qcow2.partial"), new byte[4096]);
        var tasks = pool.Services.GetRequiredService<TaskService>();
        var task = await tasks.CreateAsync("VM.snapshot", vm, default);
        var operation = new HostOperation
        {
            Id = Guid.NewGuid().ToString("N"), Kind = HostOperationKinds.VmSnapshot, HostRef = pool.Host.Ref, TaskRef = task, Target = vm, Step = "copying",
            Arguments = new Dictionary<string, string> { ["new_name"] = "resumed", ["snapshot_uuid"] = snapshotUuid, ["disks"] = $"{vbd}={newUuid}", ["quiesce"] = "false" },
        };
        await pool.Database.Leases.PutDurableAsync(operation.Key, operation.ToJson(), default);
        var ended = await tasks.WaitAsync(task, default);
        Assert.Equal("success", ended.GetString("status"));

        var snapshot = await pool.Database.FindByUuidAsync(XenClasses.VM, snapshotUuid, default);
        Assert.NotNull(snapshot);
        Assert.Equal("resumed", snapshot!.Get(XenApi.VM.NameLabel));
        Assert.False(File.Exists(Path.Combine(directory, newUuid + ".qcow2.partial")));
        Assert.True(await Holds(Path.Combine(directory, newUuid + ".qcow2"), 'A'));
        Assert.NotNull(await pool.Database.FindByUuidAsync(XenClasses.VDI, newUuid, default));
    }
}
