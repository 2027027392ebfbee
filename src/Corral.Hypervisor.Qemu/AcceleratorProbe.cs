using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Corral.Platform;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Decides KVM or TCG. <c>/dev/kvm</c> existing proves little (on some hosts <c>-cpu host</c> aborts on an MSR, or the
/// guest hangs), so KVM is trusted only after the probe image really boots under it: QEMU runs it from a throwaway
/// snapshot and the guest must print <c>CORRAL-GUEST-READY</c> on its serial port within the timeout. The outcome is
/// remembered in <c>accelerator.json</c>, keyed by QEMU's version, the kernel release and the probe image, so a host
/// probes again only when one of those changes.
/// </summary>
internal sealed class AcceleratorProbe(QemuOptions options, ILogger logger)
{
    public const string ReadyMarker = "CORRAL-GUEST-READY";
    public const string MemoFileName = "accelerator.json";

    public async Task<AcceleratorChoice> DecideAsync(CancellationToken cancellationToken)
    {
        if (options.ForceAccelerator is { Length: > 0 } forced)
        {
            return forced is "kvm" or "tcg"
                ? new AcceleratorChoice(forced, "set by configuration (Corral:Qemu:ForceAccelerator)")
                : throw new InvalidOperationException($"Corral:Qemu:ForceAccelerator is '{forced}'; use kvm, tcg, or leave it empty to probe");
        }

        if (!File.Exists("/dev/kvm"))
        {
            return new AcceleratorChoice("tcg", "/dev/kvm does not exist");
        }

        if (string.IsNullOrEmpty(options.ProbeImagePath))
        {
            return new AcceleratorChoice("tcg", "no KVM probe image configured (Corral:Qemu:ProbeImagePath), so KVM is not proven to work");
        }

        var image = Path.GetFullPath(options.ProbeImagePath);
        if (!File.Exists(image))
        {
            return new AcceleratorChoice("tcg", $"the KVM probe image {image} does not exist, so KVM is not proven to work");
        }

        var version = (await CommandRunner.RunCheckedAsync(options.QemuBinary, ["--version"], cancellationToken, TimeSpan.FromSeconds(30))
            ).Split('\n')[0].Trim();
        var imageInfo = new FileInfo(image);
        var key = string.Join('|', version, MachineInfo.KernelRelease(), image, imageInfo.Length.ToString(CultureInfo.InvariantCulture),
            imageInfo.LastWriteTimeUtc.ToString("O", CultureInfo.InvariantCulture));
        var memoPath = Path.Combine(options.StateDirectory, MemoFileName);
        if (ReadMemo(memoPath) is { } memo && memo.Key == key && memo.Name is "kvm" or "tcg")
        {
            return new AcceleratorChoice(memo.Name, $"{memo.Reason} (probed {memo.ProbedUtc:u}, remembered)");
        }

        logger.LogInformation("Probing KVM with a real boot of {Image} (up to {Seconds} s)", image, options.ProbeTimeout.TotalSeconds);
        var choice = await ProbeKvmAsync(image, cancellationToken);
        logger.LogInformation("Accelerator: {Name} ({Reason})", choice.Name, choice.Reason);
        Directory.CreateDirectory(options.StateDirectory);
        var temporary = memoPath + ".tmp";
        await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(new Memo(key, choice.Name, choice.Reason, DateTime.UtcNow)), cancellationToken);
        File.Move(temporary, memoPath, overwrite: true);
        return choice;
    }

    private static Memo? ReadMemo(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<Memo>(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Boots the probe image under KVM from a throwaway snapshot and watches its serial port and run state.</summary>
    private async Task<AcceleratorChoice> ProbeKvmAsync(string image, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(options.StateDirectory);
        var work = Path.Combine(Path.GetTempPath(), $"corral-kvm-probe-{Guid.NewGuid():N}"[..30]);
        Directory.CreateDirectory(work);
        var serial = Path.Combine(work, "serial.log");
        var qmpPath = Path.Combine(work, "qmp.sock");
        var info = new ProcessStartInfo(options.QemuBinary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
                 {
                     "-name", "corral-kvm-probe", "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
                     "-display", "none", "-snapshot", "-no-reboot",
                     "-drive", $"file={QemuCommandLine.Escape(image)},if=virtio,format=qcow2",
                     "-serial", $"file:{QemuCommandLine.Escape(serial)}",
                     "-qmp", $"unix:{QemuCommandLine.Escape(qmpPath)},server=on,wait=off",
                 })
        {
            info.ArgumentList.Add(arg);
        }

        var started = Stopwatch.StartNew();
        using var probe = Process.Start(info) ?? throw new InvalidOperationException($"could not start {options.QemuBinary}");
        var stderr = probe.StandardError.ReadToEndAsync(CancellationToken.None);
        _ = probe.StandardOutput.ReadToEndAsync(CancellationToken.None);
        QmpClient? qmp = null;
        try
        {
            while (started.Elapsed < options.ProbeTimeout)
            {
                if (File.Exists(serial) && (await File.ReadAllTextAsync(serial, cancellationToken)).Contains(ReadyMarker, StringComparison.Ordinal))
                {
                    return new AcceleratorChoice("kvm", string.Create(CultureInfo.InvariantCulture,
                        $"KVM probe: {Path.GetFileName(image)} booted under KVM (-cpu host) in {started.Elapsed.TotalSeconds:F1} s"));
                }

                if (probe.HasExited)
                {
                    var error = FirstLine(await stderr);
                    return new AcceleratorChoice("tcg", $"KVM probe: QEMU exited with {probe.ExitCode} before the guest booted: {error}");
                }

                // KVM's failures often leave QEMU alive but stopped ("KVM internal error"): its run state says so at once.
                if (qmp is null && File.Exists(qmpPath))
                {
                    try
                    {
                        qmp = await QmpClient.ConnectAsync(qmpPath, cancellationToken, TimeSpan.FromSeconds(5), logger);
                    }
                    catch (Exception ex) when (ex is QmpException or System.Net.Sockets.SocketException or IOException)
                    {
                        qmp = null;
                    }
                }

                if (qmp is not null)
                {
                    var state = (await qmp.ExecuteAsync("query-status", null, cancellationToken))?["status"]?.GetValue<string>();
                    if (state is "internal-error" or "guest-panicked" or "shutdown" or "io-error")
                    {
                        var seconds = started.Elapsed.TotalSeconds;
                        var error = FirstLine(await ReadAvailableAsync(stderr, probe));
                        return new AcceleratorChoice("tcg", string.Create(CultureInfo.InvariantCulture,
                            $"KVM probe: the guest stopped in state '{state}' after {seconds:F1} s ({error})"));
                    }
                }

                await Task.Delay(200, cancellationToken);
            }

            return new AcceleratorChoice("tcg", string.Create(CultureInfo.InvariantCulture,
                $"KVM probe: {Path.GetFileName(image)} did not finish booting under KVM within {options.ProbeTimeout.TotalSeconds:F0} s"));
        }
        catch (QmpDisconnectedException) when (!cancellationToken.IsCancellationRequested)
        {
            await probe.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            return new AcceleratorChoice("tcg", $"KVM probe: QEMU exited before the guest booted: {FirstLine(await stderr)}");
        }
        finally
        {
            if (qmp is not null)
            {
                await qmp.DisposeAsync();
            }

            if (!probe.HasExited)
            {
                probe.Kill(); // our own child, by its handle
                await probe.WaitForExitAsync(CancellationToken.None);
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>What QEMU printed so far, without waiting for it to exit (it is killed afterwards).</summary>
    private static async Task<string> ReadAvailableAsync(Task<string> stderr, Process probe)
    {
        if (!probe.HasExited)
        {
            probe.Kill();
        }

        return await stderr.WaitAsync(TimeSpan.FromSeconds(5));
    }

    private static string FirstLine(string text)
    {
        var line = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        return line.Length == 0 ? "no message" : line;
    }

    private sealed record Memo(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("reason")] string Reason,
        [property: JsonPropertyName("probed_utc")] DateTime ProbedUtc);
}
