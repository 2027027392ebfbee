using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A VM's virtual TPM 2.0 with Debian's swtpm: the guest's kernel finds a TPM 2.0 (tpm_crb), and the guest talks to it
/// through /dev/tpm0 with raw TPM 2.0 commands (busybox writes them; the test image has no tpm2-tools): an NV index it
/// defines and writes survives a stop and a start through the state the process leaves (the VTPM's contents), while
/// a PCR it extended is back to zero, as after any power cycle; both the NV index and the extended PCR survive a live
/// migration to a destination whose swtpm started with no state, since QEMU carries the TPM's state in its stream.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class VtpmTests(ITestOutputHelper output)
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(90);
    private const uint NvIndex = 0x01500016;

    [GuestImageFact]
    public async Task An_nv_index_the_guest_writes_survives_stop_and_start_and_pcrs_start_afresh()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Tpm = new TpmSpec(null) };
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var events = new EventRecorder(process);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Single(Swtpms(rig));

        await Tpm.WaitForVersion2Async(process);
        var secret = RandomNumberGenerator.GetBytes(8);
        var measurement = RandomNumberGenerator.GetBytes(32);
        await Tpm.DefineAndWriteAsync(process, secret);
        await Tpm.ExtendAsync(process, measurement);
        Assert.Equal(Tpm.Extended(new byte[32], measurement), await Tpm.ReadPcr16Async(process));
        Assert.NotNull(await process.ReadTpmStateAsync(CancellationToken.None));

        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(60));
        await process.RequestShutdownAsync(CancellationToken.None);
        await process.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        var state = await process.ReadTpmStateAsync(CancellationToken.None);
        await process.DisposeAsync();
        Assert.NotNull(state);
        Assert.Empty(Swtpms(rig)); // swtpm went with its QEMU
        Assert.False(Directory.Exists(paths.TpmState), "the runtime copy of the state goes with the process");

        // Started again from the state it left: the NV index is there, PCR 16 starts from zero as at any power-on.
        await using var second = (QemuVmProcess)await hypervisor.StartAsync(spec with { Tpm = new TpmSpec(state) }, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Tpm.WaitForVersion2Async(second);
        Assert.Equal(secret, await Tpm.ReadNvAsync(second));
        Assert.Equal(new byte[32], await Tpm.ReadPcr16Async(second));
        await second.KillAsync(CancellationToken.None);
        await second.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        Assert.Empty(Swtpms(rig));

        // A new TPM (no state) does not have it.
        await using var fresh = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Tpm.WaitForVersion2Async(fresh);
        Assert.Equal(Tpm.RcHandle, (await Tpm.RunAsync(fresh, Tpm.NvReadCommand())).Code & Tpm.RcHandle);
        await fresh.KillAsync(CancellationToken.None);
    }

    [GuestImageFact]
    public async Task Uefi_and_bios_firmware_measure_the_boot_into_the_vtpm()
    {
        // Windows 11 wants UEFI with a TPM 2.0: OVMF finds the TPM and measures itself into PCR 0 before the guest runs.
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var uefi = await rig.GuestSpecAsync(paravirtual: true) with { Uefi = new UefiSpec(null), Tpm = new TpmSpec(null) };
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(uefi, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, uefi.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Tpm.WaitForVersion2Async(process);
        Assert.NotEqual(new string('0', 64), (await Tpm.ExecAsync(process, "cat /sys/class/tpm/tpm0/pcr-sha256/0")).Trim());
        await process.KillAsync(CancellationToken.None);

        // So does SeaBIOS, for a BIOS VM (which xapi's hvmloader could not give a vTPM; QEMU's firmware can).
        var bios = await rig.GuestSpecAsync(paravirtual: true) with { Tpm = new TpmSpec(null) };
        await using var second = (QemuVmProcess)await hypervisor.StartAsync(bios, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, bios.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Tpm.WaitForVersion2Async(second);
        Assert.NotEqual(new string('0', 64), (await Tpm.ExecAsync(second, "cat /sys/class/tpm/tpm0/pcr-sha256/0")).Trim());
        await second.KillAsync(CancellationToken.None);
    }

    [GuestImageFact]
    public async Task The_tpm_state_moves_with_a_live_migration()
    {
        await using var rig = new QemuRig(output);
        var source = rig.NewHypervisor();
        var destinationRoot = Path.Combine(rig.Root, "vms-dest");
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = destinationRoot);
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Tpm = new TpmSpec(null) };
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        var sourceLog = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        await QemuRig.WaitForConsoleAsync(sourceLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Tpm.WaitForVersion2Async(sender);
        var secret = RandomNumberGenerator.GetBytes(8);
        var measurement = RandomNumberGenerator.GetBytes(32);
        await Tpm.DefineAndWriteAsync(sender, secret);
        await Tpm.ExtendAsync(sender, measurement);

        // The destination's swtpm starts empty: whatever it has after the switchover came in QEMU's stream.
        var port = QemuRig.FreePort();
        var receiver = (QemuVmProcess)await destination.StartAsync(sender.Spec with { IncomingMigration = $"tcp:127.0.0.1:{port}", Tpm = new TpmSpec(null) },
            CancellationToken.None);
        Assert.Equal(2, Swtpms(rig).Count);
        await sender.StartMigrationAsync($"tcp:127.0.0.1:{port}", MigrationTuning.Default, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover",
            TimeSpan.FromSeconds(120));
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest");
        var migration = await sender.QueryMigrationAsync(CancellationToken.None);
        Assert.True(migration.Status == MigrationStatus.Completed, migration.Error);
        await sender.KillAsync(CancellationToken.None);
        await sender.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        await sender.DisposeAsync();
        Assert.Single(Swtpms(rig)); // the source's went with its QEMU

        Assert.Equal(secret, await Tpm.ReadNvAsync(receiver));
        Assert.Equal(Tpm.Extended(new byte[32], measurement), await Tpm.ReadPcr16Async(receiver));
        // And the destination's process reads the moved state, which the VM's host writes back to the VTPM.
        Assert.NotNull(await receiver.ReadTpmStateAsync(CancellationToken.None));
        await receiver.KillAsync(CancellationToken.None);
        await receiver.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        await receiver.DisposeAsync();
        Assert.Empty(Swtpms(rig));
    }

    [GuestImageFact]
    public async Task The_vtpm_outlives_a_restarted_agent_with_its_vm_and_goes_with_it()
    {
        await using var rig = new QemuRig(output);
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Tpm = new TpmSpec(null) };
        var first = rig.NewHypervisor();
        var original = (QemuVmProcess)await first.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        var secret = RandomNumberGenerator.GetBytes(8);
        await Tpm.WaitForVersion2Async(original);
        await Tpm.DefineAndWriteAsync(original, secret);
        var swtpm = Assert.Single(Swtpms(rig));

        // The agent dies; the VM and its swtpm run on, and the next agent adopts the VM with its vTPM.
        await first.DisposeAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal([swtpm], Swtpms(rig));
        var process = Assert.IsType<QemuVmProcess>(Assert.Single(await rig.NewHypervisor().AdoptRunningAsync(CancellationToken.None)));
        Assert.NotNull(process.Spec.Tpm);
        Assert.Null(process.Spec.Tpm.State); // vm.json never holds the state
        Assert.NotNull(await process.ReadTpmStateAsync(CancellationToken.None));
        Assert.Equal(secret, await Tpm.ReadNvAsync(process));

        await process.KillAsync(CancellationToken.None);
        await process.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        Assert.NotNull(await process.ReadTpmStateAsync(CancellationToken.None));
        await process.DisposeAsync();
        Assert.Empty(Swtpms(rig));
    }

    [GuestImageFact]
    public async Task A_vm_whose_swtpm_cannot_start_does_not_start()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor(o => o.SwtpmBinary = "/nonexistent/swtpm");
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Tpm = new TpmSpec(null) };
        var refused = await Assert.ThrowsAsync<VmStartException>(() => hypervisor.StartAsync(spec, CancellationToken.None));
        Assert.Contains("swtpm", refused.Message, StringComparison.Ordinal);
        Assert.Empty(rig.LiveQemus());
        Assert.False(Directory.Exists(QemuRig.PathsOf(rig, spec.VmUuid).Directory));

        // A state swtpm cannot read: it refuses to start, and so does the VM.
        var broken = rig.NewHypervisor();
        var garbage = await Assert.ThrowsAsync<VmStartException>(() => broken.StartAsync(spec with { Tpm = new TpmSpec(new byte[100]) }, CancellationToken.None));
        output.WriteLine(garbage.Message);
        Assert.Empty(rig.LiveQemus());
        Assert.Empty(Swtpms(rig));
    }

    /// <summary>Live swtpm processes serving one of this rig's VMs (their control socket lies under its directory).</summary>
    private static List<int> Swtpms(QemuRig rig)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                    && File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0') is [var program, ..] arguments
                    && Path.GetFileName(program) == "swtpm" && arguments.Any(a => a.Contains(rig.Root, StringComparison.Ordinal))
                    && !File.ReadAllText(Path.Combine(dir, "stat")).Split(") ")[1].StartsWith('Z'))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        return found;
    }

    /// <summary>
    /// Raw TPM 2.0 commands (TCG TPM 2.0 Library, part 3) sent through the guest's /dev/tpm0: the command written to a
    /// file with busybox's printf, then handed to the device in one write (dd), the response read from the same open
    /// file, in hexadecimal. Authorisation is the owner hierarchy's empty password (TPM_RS_PW), as on a new TPM.
    /// </summary>
    private static class Tpm
    {
        public const uint RcHandle = 0x08B; // TPM_RC_HANDLE (with its parameter/handle number bits masked off below)
        private const string PasswordSession = "00000009" + "40000009" + "0000" + "00" + "0000";

        /// <summary>The guest's kernel found a TPM 2.0.</summary>
        public static async Task WaitForVersion2Async(QemuVmProcess process) =>
            Assert.Equal("2", (await ExecAsync(process, "cat /sys/class/tpm/tpm0/tpm_version_major")).Trim());

        public static async Task<(uint Code, byte[] Response)> RunAsync(QemuVmProcess process, string commandHex)
        {
            var bytes = Convert.FromHexString(commandHex);
            var octal = string.Concat(bytes.Select(b => "\\" + Convert.ToString(b, 8).PadLeft(3, '0')));
            var said = await ExecAsync(process,
                $"printf '{octal}' > /tmp/tpmc; exec 3<>/dev/tpm0; dd if=/tmp/tpmc bs=4096 count=1 >&3 2>/dev/null; dd bs=4096 count=1 <&3 2>/dev/null | od -An -v -tx1");
            var response = Convert.FromHexString(string.Concat(said.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries)));
            Assert.True(response.Length >= 10, $"a TPM response, not '{said}'");
            return (ReadUInt32(response, 6), response);
        }

        /// <summary>
        /// Runs a shell command in the guest through the QEMU guest agent (<c>guest-exec</c>, over the VM process's own
        /// connection), once: a TPM command is not idempotent (a second NV_DefineSpace fails). Returns its output.
        /// </summary>
        public static async Task<string> ExecAsync(QemuVmProcess process, string command)
        {
            var qga = process.Qga ?? throw new InvalidOperationException("the VM has no guest agent port");
            var watch = System.Diagnostics.Stopwatch.StartNew();
            JsonNode? started = null;
            while (started is null)
            {
                try
                {
                    started = await qga.AskAsync((c, ct) => c.ExecuteAsync("guest-exec",
                        new JsonObject { ["path"] = "/bin/sh", ["arg"] = new JsonArray("-c", command), ["capture-output"] = true }, TimeSpan.FromSeconds(30), ct),
                        CancellationToken.None);
                }
                catch (IOException) when (watch.Elapsed < GuestTimeout)
                {
                    await Task.Delay(500); // the agent's connection is not up yet
                }
            }

            var pid = started!["pid"]!.GetValue<long>();
            while (true)
            {
                var status = await qga.AskAsync((c, ct) => c.ExecuteAsync("guest-exec-status", new JsonObject { ["pid"] = pid }, TimeSpan.FromSeconds(30), ct),
                    CancellationToken.None);
                if (status?["exited"]?.GetValue<bool>() == true)
                {
                    return Encoding.ASCII.GetString(Convert.FromBase64String(status["out-data"]?.GetValue<string>() ?? ""));
                }

                Assert.True(watch.Elapsed < GuestTimeout, $"'{command}' still runs after {GuestTimeout.TotalSeconds} s");
                await Task.Delay(200);
            }
        }

        private static uint ReadUInt32(byte[] bytes, int at) => (uint)(bytes[at] << 24 | bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3]);

        private static string Command(string tag, uint code, string body)
        {
            var length = 10 + body.Length / 2;
            return tag + length.ToString("x8", CultureInfo.InvariantCulture) + code.ToString("x8", CultureInfo.InvariantCulture) + body;
        }

        private static string Index => NvIndex.ToString("x8", CultureInfo.InvariantCulture);

        public static async Task DefineAndWriteAsync(QemuVmProcess process, byte[] value)
        {
            // TPM2_NV_DefineSpace: 8 bytes, owner read and write (TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD), no auth value.
            var define = Command("8002", 0x12A, "40000001" + PasswordSession + "0000" + "000e" + Index + "000b" + "00020002" + "0000" + "0008");
            Assert.Equal(0u, (await RunAsync(process, define)).Code);
            var write = Command("8002", 0x137, "40000001" + Index + PasswordSession + "0008" + Convert.ToHexString(value) + "0000");
            Assert.Equal(0u, (await RunAsync(process, write)).Code);
        }

        public static string NvReadCommand() => Command("8002", 0x14E, "40000001" + Index + PasswordSession + "0008" + "0000");

        public static async Task<byte[]> ReadNvAsync(QemuVmProcess process)
        {
            var (code, response) = await RunAsync(process, NvReadCommand());
            Assert.Equal(0u, code);
            return response[16..24]; // after the header, parameterSize and the TPM2B's size
        }

        public static async Task ExtendAsync(QemuVmProcess process, byte[] digest)
        {
            // TPM2_PCR_Extend of PCR 16 (the debug PCR, which software may extend), one SHA-256 digest.
            var extend = Command("8002", 0x182, "00000010" + PasswordSession + "00000001" + "000b" + Convert.ToHexString(digest));
            Assert.Equal(0u, (await RunAsync(process, extend)).Code);
        }

        public static async Task<byte[]> ReadPcr16Async(QemuVmProcess process)
        {
            // TPM2_PCR_Read: the SHA-256 bank, PCR 16 (bit 0 of the third select byte).
            var (code, response) = await RunAsync(process, Command("8001", 0x17E, "00000001" + "000b" + "03" + "000001"));
            Assert.Equal(0u, code);
            return response[30..62];
        }

        public static byte[] Extended(byte[] pcr, byte[] digest) => SHA256.HashData([.. pcr, .. digest]);
    }
}
