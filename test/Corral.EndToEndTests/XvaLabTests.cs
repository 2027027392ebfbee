using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// VM export and import through the lab with xe, as an administrator moves a VM, on the shared lab: a UEFI test VM of
/// its own with a vTPM, booted once (its firmware writes its variables, its kernel the TPM's seeds), exported with
/// <c>xe vm-export</c> (gzip) and imported with <c>xe vm-import</c>, which prints the new VM's uuid: the copy has new
/// MACs, the same NVRAM and the same TPM contents, and boots; a snapshot exports by its uuid, and curl fetches an
/// export with HTTP Basic credentials.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class XvaLabTests(SharedLab shared) : IDisposable
{
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;
    private readonly string _files = Directory.CreateTempSubdirectory("corral-xva-lab-").FullName;
    private readonly List<string> _made = [];
    private string? _snapshot;

    public void Dispose() => Directory.Delete(_files, recursive: true);

    [Fact]
    public async Task A_uefi_vm_with_a_vtpm_exported_with_xe_imports_as_a_new_vm_with_its_nvram_and_tpm_that_boots()
    {
        try
        {
            await ExportAndImportAsync();
        }
        finally
        {
            if (_snapshot is not null)
            {
                await _lab.TryXe("snapshot-uninstall", $"snapshot-uuid={_snapshot}", "--force");
            }

            foreach (var vm in _made)
            {
                await _shared.RemoveAsync(vm);
            }
        }
    }

    private async Task ExportAndImportAsync()
    {
        var (vm, ip) = await _shared.InstallTestVmAsync("export test VM", 24, true, "HVM-boot-params:firmware=uefi");
        _made.Add(vm);
        var vtpm = await _lab.Xe("vtpm-create", $"vm-uuid={vm}");
        await _lab.Xe("vm-start", $"uuid={vm}");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), "the UEFI VM with its vTPM");
        await LabSession.Eventually(async () => !(await _lab.Xe("vtpm-param-get", $"uuid={vtpm}", "param-name=secret")).EndsWith("size=0 bytes", StringComparison.Ordinal),
            TimeSpan.FromSeconds(75), "the vTPM's state saved");
        await _lab.Xe("vm-shutdown", $"uuid={vm}");
        var nvram = await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=NVRAM");
        Assert.StartsWith("EFI-variables: ", nvram, StringComparison.Ordinal);
        var tpm = await _lab.Xe("vtpm-param-get", $"uuid={vtpm}", "param-name=secret");
        Assert.Contains("export", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=allowed-operations"), StringComparison.Ordinal);

        var file = Path.Combine(_files, "vm.xva");
        Assert.Equal("Export succeeded", await _lab.Xe("vm-export", $"vm={vm}", $"filename={file}", "compress=true"));
        var head = new byte[2];
        await using (var xva = File.OpenRead(file))
        {
            await xva.ReadExactlyAsync(head);
        }

        Assert.Equal([0x1f, 0x8b], head);

        var imported = await _lab.Xe("vm-import", $"filename={file}");
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", imported);
        _made.Add(imported);
        Assert.NotEqual(vm, imported);
        Assert.Equal("halted", await _lab.Xe("vm-param-get", $"uuid={imported}", "param-name=power-state"));
        Assert.NotEqual(await _lab.Xe("vif-list", $"vm-uuid={vm}", "params=MAC", "--minimal"), await _lab.Xe("vif-list", $"vm-uuid={imported}", "params=MAC", "--minimal"));
        Assert.Equal(nvram, await _lab.Xe("vm-param-get", $"uuid={imported}", "param-name=NVRAM"));
        var importedVtpm = await _lab.Xe("vtpm-list", $"vm-uuid={imported}", "--minimal");
        Assert.NotEqual(vtpm, importedVtpm);
        Assert.Equal(tpm, await _lab.Xe("vtpm-param-get", $"uuid={importedVtpm}", "param-name=secret")); // "MD5=... size=N bytes"

        // The copy boots (the original stays halted: the copy has its address).
        await _lab.Xe("vm-start", $"uuid={imported}");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), "the imported VM");
        await _lab.Xe("vm-shutdown", $"uuid={imported}", "--force");

        // A snapshot exports by its uuid; curl with HTTP Basic gets the same kind of archive.
        var snapshot = await _lab.Xe("vm-snapshot", $"uuid={vm}", "new-name-label=xva-snap");
        _snapshot = snapshot;
        Assert.Equal("Export succeeded", await _lab.Xe("vm-export", $"vm={snapshot}", $"filename={Path.Combine(_files, "snap.xva")}"));
        var (curl, output) = await _lab.RunAsync("curl", "-sSk", "-u", "root:corral", "-o", Path.Combine(_files, "curl.xva"), "-w", "%{http_code}",
            $"https://{_lab.Addresses[0]}/export?uuid={vm}");
        Assert.True(curl == 0 && output.EndsWith("200", StringComparison.Ordinal), output);
        var (tar, members) = await _lab.RunAsync("tar", "-tf", Path.Combine(_files, "curl.xva"));
        Assert.True(tar == 0, members);
        Assert.StartsWith("ova.xml", members, StringComparison.Ordinal);
    }
}
