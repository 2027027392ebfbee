using Microsoft.Extensions.Options;

namespace Corral.FenceDaemon;

/// <summary>The fence daemon's settings (section <c>Corral:Fence</c>); the timing budget comes from the agent.</summary>
public sealed class FenceOptions
{
    /// <summary>The Unix socket the agent reports to (the agent's <c>Corral:Ha:FenceSocket</c>).</summary>
    public string Socket { get; set; } = "/run/corral/fenced.sock";

    /// <summary>
    /// The watchdog device, armed while HA is on: <c>/dev/watchdog</c> on a real host (a hardware watchdog, or the
    /// kernel's softdog), the lab's emulated one (a FIFO read by <c>./lab</c>) in the lab.
    /// </summary>
    public string WatchdogDevice { get; set; } = "/dev/watchdog";

    /// <summary>Where the host's QEMU processes have their runtime directories (the agent's <c>Corral:Qemu:RuntimeDirectory</c>).</summary>
    public string QemuRuntimeDirectory { get; set; } = "/run/corral/vms";
}

public sealed class FenceOptionsValidation : IValidateOptions<FenceOptions>
{
    public ValidateOptionsResult Validate(string? name, FenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        foreach (var (setting, value) in new[] { ("Socket", options.Socket), ("WatchdogDevice", options.WatchdogDevice), ("QemuRuntimeDirectory", options.QemuRuntimeDirectory) })
        {
            if (string.IsNullOrWhiteSpace(value) || !Path.IsPathFullyQualified(value))
            {
                problems.Add($"Corral:Fence:{setting} must be an absolute path (it is '{value}')");
            }
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
