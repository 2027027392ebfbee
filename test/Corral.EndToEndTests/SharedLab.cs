using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The lab tests that leave the pool as they found it share one lab, brought up once for all of them: each such test
/// works on VMs of its own (<see cref="SharedLab.NewTestVmAsync"/>) and removes them, so that none depends on what
/// another did. Tests that break the pool (a master's plug pulled, lost quorum) keep a lab of their own; one that pulls
/// another host's plug or kills an agent brings the host back before it ends (<see cref="NfsHaLabTests"/>).
/// </summary>
[CollectionDefinition(Name)]
public sealed class SharedLabCollection : ICollectionFixture<SharedLab>
{
    public const string Name = "shared lab";
}

public sealed class SharedLab : IAsyncLifetime
{
    /// <summary>
    /// The shared lab keeps its VMs on NFS, as XenServer shops do: the pool's shared SR is <c>type=nfs</c> on the lab's
    /// storage server (nfs-ganesha in a namespace of its own, on a storage network apart from the management network).
    /// </summary>
    public SharedLab() => Lab = new("shared", 9, new Dictionary<string, string> { ["CORRAL_LAB_CAPTURE"] = UpCapture, ["CORRAL_LAB_SR"] = "nfs" });

    public LabSession Lab { get; }

    /// <summary>A capture of the management network while the lab came up, its pool-joins included (<see cref="WireLabTests"/>).</summary>
    public string UpCapture { get; } = WireCapture.PathFor("shared-up");

    public Task InitializeAsync() => Lab.UpAsync();

    public async Task DisposeAsync()
    {
        await Lab.DisposeAsync();
        File.Delete(UpCapture); // 16 MB; a failing WireLabTests names each stream where it found what it must not
    }

    /// <summary>
    /// A VM of the caller's own, installed from one of the lab's test templates on the shared SR (with its tools, or
    /// <paramref name="tools"/> false for the image without them), at address <c>&lt;lab's VM subnet&gt;.<paramref name="host"/></c>,
    /// started on lab-host<paramref name="on"/> and answering ping.
    /// </summary>
    public async Task<TestVm> NewTestVmAsync(string name, int host, int on = 1, bool tools = true, params string[] settings)
    {
        var vm = await InstallTestVmAsync(name, host, tools, settings);
        await Lab.Xe("vm-start", $"uuid={vm.Uuid}", $"on=lab-host{on}");
        await LabSession.Eventually(() => LabSession.Ping(vm.Ip), TimeSpan.FromSeconds(90), $"{name} to answer ping at {vm.Ip}");
        return vm;
    }

    /// <summary>As <see cref="NewTestVmAsync"/>, left halted.</summary>
    public async Task<TestVm> InstallTestVmAsync(string name, int host, bool tools = true, params string[] settings)
    {
        var template = tools ? "Corral Linux test" : "Corral Linux test (no tools)";
        var shared = await Lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        var subnet = await VmSubnetAsync();
        var ip = $"{subnet}.{host}";
        var vm = await Lab.Xe("vm-install", $"template={template}", $"new-name-label={name}", $"sr-uuid={shared}");
        await Lab.Xe(["vm-param-set", $"uuid={vm}", $"xenstore-data:vm-data/ip={ip}/24", $"xenstore-data:vm-data/gateway={subnet}.1", .. settings]);
        return new TestVm(vm, ip);
    }

    /// <summary>Shuts the VM down (forced) if it runs, and uninstalls it with its disks.</summary>
    public async Task RemoveAsync(string vm)
    {
        if ((await Lab.TryXe("vm-param-get", $"uuid={vm}", "param-name=power-state")).Output != "halted")
        {
            await Lab.TryXe("vm-shutdown", $"uuid={vm}", "--force");
        }

        await Lab.TryXe("vm-uninstall", $"uuid={vm}", "--force");
    }

    /// <summary>The first three octets of the lab's VM network, from the address the lab gave its test VM.</summary>
    public async Task<string> VmSubnetAsync()
    {
        var testVm = await Lab.Xe("vm-list", "name-label=Corral test VM", "--minimal");
        var ip = (await Lab.Xe("vm-param-get", $"uuid={testVm}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
        return ip[..ip.LastIndexOf('.')];
    }
}

/// <summary>A VM a test made for itself, and its address.</summary>
public sealed record TestVm(string Uuid, string Ip);
