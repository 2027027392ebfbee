using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// An ISO library on an SMB share (<c>type=iso device-config:location=//server/share username cifspassword</c>, as
/// XenServer's), on a real Samba server on loopback, run by a real agent's storage handlers: the share is mounted on
/// the host in userspace (smbnetfs, FUSE) when the PBD plugs, read as a directory (its images become VDIs, their
/// bytes as the server holds them), and unmounted, its smbnetfs gone, when the PBD unplugs; refused credentials are
/// SM's errors, with nothing left mounted.
/// </summary>
public sealed class SmbIsoSrTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => (object?)p.Value);

    private static Dictionary<string, object?> Config(string password) =>
        Map(("location", SmbRig.Location), ("username", SmbRig.User), ("cifspassword", password));

    private async Task<string> CreateAsync(string password) =>
        (string)(await pool.S("SR.create", pool.Host.Ref, Config(password), 0L, "ISOs on SMB", "the share", "iso", "iso", true, Map()))!;

    /// <summary>The mounts under this agent's state directory, by /proc/self/mountinfo.</summary>
    private List<string> Mounts() =>
        File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(pool.Root, StringComparison.Ordinal)).ToList();

    [Fact]
    public async Task An_iso_library_on_an_smb_share_is_mounted_with_its_pbd_and_its_images_are_vdis()
    {
        await using var smb = await SmbRig.StartAsync();
        var image = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 7)).ToArray();
        await File.WriteAllBytesAsync(Path.Combine(smb.ShareDirectory, "installer.iso"), image);
        await File.WriteAllTextAsync(Path.Combine(smb.ShareDirectory, "notes.txt"), "not an image");

        // Refused credentials: SM's ISOSharenameFailure (mounted, but the share cannot be read), and nothing stays mounted.
        Assert.Equal("SR_BACKEND_FAILURE_224", (await pool.Fails("SR.create", pool.Host.Ref, Config("wrong"), 0L, "refused", "", "iso", "iso", true, Map())).Code);
        Assert.Empty(Mounts());
        Assert.Empty((List<object?>)(await pool.S("SR.get_by_name_label", "refused"))!);

        var sr = await CreateAsync(SmbRig.Password);
        string? pbd = null;
        foreach (var candidate in ((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Cast<string>())
        {
            pbd = (string)(await pool.S("PBD.get_host", candidate))! == pool.Host.Ref ? candidate : pbd;
        }

        Assert.NotNull(pbd);
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", pbd))!);
        // As xapi keeps it: the password in a secret of the PBD's own, not in the device_config every session reads.
        var kept = (Dictionary<string, object?>)(await pool.S("PBD.get_device_config", pbd))!;
        Assert.False(kept.ContainsKey("cifspassword"));
        var secret = await pool.S("secret.get_by_uuid", kept["cifspassword_secret"]);
        Assert.Equal(SmbRig.Password, await pool.S("secret.get_value", secret));
        Assert.Single(Mounts());
        await pool.S("SR.scan", sr);
        var vdis = ((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Cast<string>().ToList();
        var iso = Assert.Single(vdis);
        Assert.Equal("installer.iso", await pool.S("VDI.get_location", iso));
        Assert.Equal((long)image.Length, await pool.S("VDI.get_virtual_size", iso));

        // What QEMU would open for the VDI: the image's bytes, read through the mount from the server.
        var (path, _) = pool.Services.GetRequiredService<Corral.Storage.SrDrivers>().Get("iso").Resolve(SmbRig.Location, "installer.iso");
        Assert.StartsWith(pool.Root, path, StringComparison.Ordinal);
        Assert.Equal(image, await File.ReadAllBytesAsync(path));

        await pool.S("PBD.unplug", pbd);
        Assert.Empty(Mounts());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(pool.Root, "state", "sr-mount"), "smbnetfs.conf", SearchOption.AllDirectories));
        await pool.S("PBD.plug", pbd);
        Assert.Single(Mounts());
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.forget", sr);
        Assert.Equal("UUID_INVALID", (await pool.Fails("secret.get_by_uuid", kept["cifspassword_secret"])).Code);
        Assert.Empty(Mounts());
        Assert.DoesNotContain(Directory.EnumerateDirectories("/proc"), p => File.Exists(Path.Combine(p, "cmdline"))
            && File.ReadAllText(Path.Combine(p, "cmdline")).Contains(pool.Root, StringComparison.Ordinal) && File.ReadAllText(Path.Combine(p, "cmdline")).StartsWith("smbnetfs", StringComparison.Ordinal));
    }

    /// <summary>
    /// SM's <c>vers</c>: 3.0 speaks SMB3 to the share; 1.0 speaks SMB1 only, which Samba (as Debian ships it) no longer
    /// serves, so the mount fails and nothing stays mounted; any other version is SM's 227.
    /// </summary>
    [Fact]
    public async Task The_smb_version_an_administrator_names_is_the_one_spoken_to_the_share()
    {
        await using var smb = await SmbRig.StartAsync();
        await File.WriteAllBytesAsync(Path.Combine(smb.ShareDirectory, "a.iso"), new byte[4096]);
        Dictionary<string, object?> With(string vers) => new(Config(SmbRig.Password)) { ["vers"] = vers };

        Assert.Equal("SR_BACKEND_FAILURE_227", (await pool.Fails("SR.create", pool.Host.Ref, With("2.1"), 0L, "v2.1", "", "iso", "iso", true, Map())).Code);
        var smb1 = await pool.Fails("SR.create", pool.Host.Ref, With("1.0"), 0L, "v1", "", "iso", "iso", true, Map());
        Assert.Contains(smb1.Code, new[] { "SR_BACKEND_FAILURE_222", "SR_BACKEND_FAILURE_224" });
        Assert.Empty(Mounts());

        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, With("3.0"), 0L, "v3", "", "iso", "iso", true, Map()))!;
        await pool.S("SR.scan", sr);
        Assert.Single((List<object?>)(await pool.S("SR.get_VDIs", sr))!);
        var conf = Directory.EnumerateFiles(Path.Combine(pool.Root, "state", "sr-mount"), "smb.conf", SearchOption.AllDirectories).Single();
        Assert.Contains("client max protocol = SMB3", await File.ReadAllTextAsync(conf), StringComparison.Ordinal);
        foreach (var pbd in ((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Cast<string>())
        {
            await pool.S("PBD.unplug", pbd);
        }

        await pool.S("SR.forget", sr);
        Assert.Empty(Mounts());
    }

    [Fact]
    public async Task A_clients_own_secret_names_the_password_and_the_pbd_keeps_a_copy_of_it()
    {
        await using var smb = await SmbRig.StartAsync();
        await File.WriteAllBytesAsync(Path.Combine(smb.ShareDirectory, "tools.iso"), new byte[4096]);

        // As XenServer's documentation has it: the password in a secret the client made, named by cifspassword_secret.
        var own = await pool.S("secret.create", new Dictionary<string, object?> { ["value"] = SmbRig.Password, ["other_config"] = new Dictionary<string, object?>() });
        var ownUuid = await pool.S("secret.get_uuid", own);
        var config = Map(("location", SmbRig.Location), ("username", SmbRig.User), ("cifspassword_secret", (string)ownUuid!));
        Assert.Equal("UUID_INVALID", (await pool.Fails("SR.create", pool.Host.Ref,
            Map(("location", SmbRig.Location), ("username", SmbRig.User), ("cifspassword_secret", Guid.NewGuid().ToString())), 0L, "no secret", "", "iso", "iso", true, Map())).Code);
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, config, 0L, "ISOs by secret", "", "iso", "iso", true, Map()))!;
        var pbd = await pool.MyPbdAsync(sr);
        var copy = (string)((Dictionary<string, object?>)(await pool.S("PBD.get_device_config", pbd))!)["cifspassword_secret"]!;
        Assert.NotEqual(ownUuid, copy);

        // The client's secret destroyed, the PBD plugs again with its own copy.
        await pool.S("secret.destroy", own);
        await pool.S("PBD.unplug", pbd);
        await pool.S("PBD.plug", pbd);
        await pool.S("SR.scan", sr);
        Assert.Single((List<object?>)(await pool.S("SR.get_VDIs", sr))!);

        // A PBD destroyed takes its secret with it.
        await pool.S("PBD.unplug", pbd);
        await pool.S("PBD.destroy", pbd);
        Assert.Equal("UUID_INVALID", (await pool.Fails("secret.get_by_uuid", copy)).Code);
        await pool.S("SR.forget", sr);
    }
}
