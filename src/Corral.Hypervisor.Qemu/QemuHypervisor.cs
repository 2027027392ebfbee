using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Corral.Platform;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Hypervisor.Qemu;

/// <summary>Runs VMs as daemonized QEMU processes, so they outlive the agent that started them.</summary>
public sealed class QemuHypervisor(IOptions<QemuOptions> options, ILogger<QemuHypervisor> logger) : IHypervisor, IDisposable
{
    public void Dispose() => _probeLock.Dispose();

    private readonly QemuOptions _options = options.Value;
    private readonly SemaphoreSlim _probeLock = new(1, 1);
    private AcceleratorChoice? _accelerator;

    public async Task<AcceleratorChoice> GetAcceleratorAsync(CancellationToken cancellationToken)
    {
        if (_accelerator is not null)
        {
            return _accelerator;
        }

        await _probeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _accelerator ??= await DecideAcceleratorAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _probeLock.Release();
        }
    }

    private async Task<AcceleratorChoice> DecideAcceleratorAsync(CancellationToken cancellationToken)
    {
        if (_options.ForceAccelerator is { Length: > 0 } forced)
        {
            return new AcceleratorChoice(forced, "set by configuration (Corral:Qemu:ForceAccelerator)");
        }

        if (!File.Exists("/dev/kvm"))
        {
            return new AcceleratorChoice("tcg", "/dev/kvm does not exist");
        }

        if (_options.ProbeImagePath is not { } image || !File.Exists(image))
        {
            return new AcceleratorChoice("tcg", "no probe image to prove KVM with a real boot");
        }

        var version = (await CommandRunner.RunAsync(_options.QemuBinary, ["--version"], cancellationToken).ConfigureAwait(false)).StandardOutput.Split('\n')[0];
        var key = $"{version}|{MachineInfo.KernelRelease()}|{new FileInfo(image).Length}|{File.GetLastWriteTimeUtc(image):O}";
        Directory.CreateDirectory(_options.StateDirectory);
        var memo = Path.Combine(_options.StateDirectory, "accelerator.json");
        if (File.Exists(memo) && JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(memo, cancellationToken).ConfigureAwait(false)) is { } saved
            && saved.GetValueOrDefault("key") == key)
        {
            return new AcceleratorChoice(saved["name"], saved["reason"] + " (remembered)");
        }

        var choice = await ProbeKvmAsync(image, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(memo, JsonSerializer.Serialize(new Dictionary<string, string> { ["key"] = key, ["name"] = choice.Name, ["reason"] = choice.Reason }),
            cancellationToken).ConfigureAwait(false);
        return choice;
    }

    /// <summary>Boots the probe image under KVM (a throwaway snapshot) and waits for the guest to say it is up.</summary>
    private async Task<AcceleratorChoice> ProbeKvmAsync(string image, CancellationToken cancellationToken)
    {
        var serial = Path.Combine(Path.GetTempPath(), $"corral-kvm-probe-{Guid.NewGuid():N}.log");
        var info = new ProcessStartInfo(_options.QemuBinary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[]
                 {
                     "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none", "-snapshot",
                     "-drive", $"file={QemuCommandLine.Escape(image)},if=virtio,format=qcow2", "-serial", $"file:{serial}", "-no-reboot",
                 })
        {
            info.ArgumentList.Add(arg);
        }

        var started = Stopwatch.StartNew();
        using var probe = Process.Start(info) ?? throw new InvalidOperationException("could not start QEMU");
        var stderr = probe.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            while (started.Elapsed < _options.ProbeTimeout && !probe.HasExited)
            {
                if (File.Exists(serial) && (await File.ReadAllTextAsync(serial, cancellationToken).ConfigureAwait(false)).Contains("CORRAL-GUEST-READY", StringComparison.Ordinal))
                {
                    return new AcceleratorChoice("kvm", string.Create(CultureInfo.InvariantCulture, $"KVM probe boot reached the guest in {started.Elapsed.TotalSeconds:F1} s"));
                }

                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }

            if (probe.HasExited)
            {
                var error = (await stderr.ConfigureAwait(false)).Trim().Split('\n').FirstOrDefault() ?? "";
                return new AcceleratorChoice("tcg", $"KVM probe: QEMU exited with {probe.ExitCode}: {error}");
            }

            return new AcceleratorChoice("tcg", string.Create(CultureInfo.InvariantCulture, $"KVM probe boot did not reach the guest within {_options.ProbeTimeout.TotalSeconds:F0} s"));
        }
        finally
        {
            if (!probe.HasExited)
            {
                probe.Kill(); // our own child, by its handle
                await probe.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            File.Delete(serial);
        }
    }

    public async Task<IVmProcess> StartAsync(VmLaunchSpec spec, CancellationToken cancellationToken)
    {
        var accelerator = (await GetAcceleratorAsync(cancellationToken).ConfigureAwait(false)).Name;
        var paths = new VmRuntimePaths(Path.Combine(_options.RuntimeDirectory, spec.VmUuid));
        if (File.Exists(paths.PidFile) && int.TryParse(File.ReadAllText(paths.PidFile).Trim(), out var existing) && QemuVmProcess.IsAlive(existing, spec.VmUuid))
        {
            throw new VmStartException($"a QEMU process ({existing}) already runs this VM");
        }

        if (Directory.Exists(paths.Directory))
        {
            Directory.Delete(paths.Directory, recursive: true);
        }

        Directory.CreateDirectory(paths.Directory);
        await File.WriteAllTextAsync(paths.Spec, JsonSerializer.Serialize(spec), cancellationToken).ConfigureAwait(false);
        var arguments = QemuCommandLine.Build(spec, paths, accelerator);
        logger.LogInformation("Starting VM {Name} ({Uuid}) under {Accelerator}", spec.Name, spec.VmUuid, accelerator);
        var result = await CommandRunner.RunAsync(_options.QemuBinary, arguments, cancellationToken, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        if (!result.Succeeded || !File.Exists(paths.PidFile))
        {
            TryDelete(paths.Directory);
            var message = result.StandardError.Trim();
            throw new VmStartException(string.IsNullOrEmpty(message) ? $"QEMU exited with {result.ExitCode}" : message);
        }

        var pid = int.Parse((await File.ReadAllTextAsync(paths.PidFile, cancellationToken).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture);
        try
        {
            var qmp = await QmpClient.ConnectAsync(paths.Qmp, cancellationToken).ConfigureAwait(false);
            return new QemuVmProcess(spec.VmUuid, pid, paths, qmp, spec.Paravirtual, _options, logger);
        }
        catch (Exception ex)
        {
            if (QemuVmProcess.IsAlive(pid, spec.VmUuid))
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }

            TryDelete(paths.Directory);
            throw new VmStartException("QEMU started but its monitor did not answer: " + ex.Message, ex);
        }
    }

    public async Task<IReadOnlyList<IVmProcess>> AdoptRunningAsync(CancellationToken cancellationToken)
    {
        var adopted = new List<IVmProcess>();
        if (!Directory.Exists(_options.RuntimeDirectory))
        {
            return adopted;
        }

        foreach (var directory in Directory.EnumerateDirectories(_options.RuntimeDirectory))
        {
            var paths = new VmRuntimePaths(directory);
            try
            {
                var spec = JsonSerializer.Deserialize<VmLaunchSpec>(await File.ReadAllTextAsync(paths.Spec, cancellationToken).ConfigureAwait(false))!;
                var pid = int.Parse((await File.ReadAllTextAsync(paths.PidFile, cancellationToken).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture);
                if (!QemuVmProcess.IsAlive(pid, spec.VmUuid))
                {
                    TryDelete(directory);
                    continue;
                }

                var qmp = await QmpClient.ConnectAsync(paths.Qmp, cancellationToken).ConfigureAwait(false);
                adopted.Add(new QemuVmProcess(spec.VmUuid, pid, paths, qmp, spec.Paravirtual, _options, logger));
            }
            catch (Exception ex) when (ex is IOException or JsonException or FormatException or System.Net.Sockets.SocketException or QmpException or TimeoutException)
            {
                logger.LogWarning(ex, "Could not adopt the VM process in {Directory}", directory);
            }
        }

        return adopted;
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class QemuServiceCollectionExtensions
{
    public static IServiceCollection AddQemuHypervisor(this IServiceCollection services, Action<QemuOptions>? configure = null)
    {
        var options = services.AddOptions<QemuOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddSingleton<IHypervisor, QemuHypervisor>();
        return services;
    }
}
