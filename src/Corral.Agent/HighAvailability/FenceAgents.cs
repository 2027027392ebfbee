using Corral.Api.Pool;
using Corral.HighAvailability;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// Power fencing, so that the master need not wait for a failed host to fence itself: chosen by the host's
/// <c>power_on_mode</c> and <c>power_on_config</c>, XenServer's own host power-management settings
/// (<c>xe host-set-power-on-mode</c>). <c>IPMI</c> powers the machine off through its BMC with <c>ipmitool</c>
/// (<c>power_on_ip</c>, <c>power_on_user</c>, and the password in the <c>secret</c> named by
/// <c>power_on_password_secret</c>, as xapi keeps it) and checks it is off; <c>lab</c> is the lab's
/// power switch (<c>./lab pull-plug &lt;slot&gt;</c>: every process of that lab host killed by its pid). A host with
/// neither has no fence agent, and HA relies on its self-fence alone.
/// </summary>
public sealed class FenceAgents(IPoolDatabase database, IOptions<HaOptions> options, ILogger<FenceAgents> logger) : IHostPowerControl
{
    public static bool Configured(XenObject host) => host.Get(XenApi.Host.PowerOnMode) is PowerFencing.Ipmi or PowerFencing.Lab;

    /// <summary>Powers the host off; true once it is known to be off, false when it could not be done (or no agent is set).</summary>
    public async Task<bool> FenceAsync(XenObject host, CancellationToken cancellationToken)
    {
        var config = host.Get(XenApi.Host.PowerOnConfig);
        var name = host.Get(XenApi.Host.NameLabel);
        try
        {
            switch (host.Get(XenApi.Host.PowerOnMode))
            {
                case PowerFencing.Lab when options.Value.LabScript is { Length: > 0 } script && config.GetValueOrDefault("slot") is { Length: > 0 } slot:
                {
                    var result = await CommandRunner.RunAsync(script, ["pull-plug", slot], cancellationToken);
                    Log(name, "lab power switch", result);
                    return result.Succeeded;
                }

                case PowerFencing.Ipmi:
                {
                    var (bmc, password) = await BmcAsync(config, cancellationToken);
                    var secret = new Dictionary<string, string> { ["IPMI_PASSWORD"] = password };
                    var off = await CommandRunner.RunAsync("ipmitool", [.. bmc, "chassis", "power", "off"], cancellationToken, environment: secret);
                    Log(name, "IPMI power off", off);
                    var status = await CommandRunner.RunAsync("ipmitool", [.. bmc, "chassis", "power", "status"], cancellationToken, environment: secret);
                    return status.Succeeded && status.StandardOutput.Contains("is off", StringComparison.OrdinalIgnoreCase);
                }

                default:
                    return false;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "HA: could not power-fence host {Host}", name);
            return false;
        }
    }

    /// <summary>
    /// <c>host.power_on</c>: the same settings the other way round. <c>lab</c> runs <c>./lab power-on &lt;slot&gt;</c>
    /// (links up, the host's agent started, and with it its etcd member); <c>IPMI</c> asks the BMC for
    /// <c>chassis power on</c>. Either failing is the host failing to power on, with the command's own words.
    /// </summary>
    public async Task PowerOnAsync(XenObject host, CancellationToken cancellationToken)
    {
        var config = host.Get(XenApi.Host.PowerOnConfig);
        var name = host.Get(XenApi.Host.NameLabel);
        CommandResult result;
        switch (host.Get(XenApi.Host.PowerOnMode))
        {
            case PowerFencing.Lab:
                if (options.Value.LabScript is not { Length: > 0 } script || config.GetValueOrDefault("slot") is not { Length: > 0 } slot)
                {
                    throw new XenApiException(ErrorCodes.InternalError, "The host failed to power on: power-on mode 'lab' needs power_on_config:slot and this host's Corral:Ha:LabScript");
                }

                result = await CommandRunner.RunAsync(script, ["power-on", slot], cancellationToken);
                break;
            case PowerFencing.Ipmi:
            {
                var (bmc, password) = await BmcAsync(config, cancellationToken);
                result = await CommandRunner.RunAsync("ipmitool", [.. bmc, "chassis", "power", "on"], cancellationToken,
                    environment: new Dictionary<string, string> { ["IPMI_PASSWORD"] = password });
                break;
            }
            default:
                throw new XenApiException(ErrorCodes.HostPowerOnModeDisabled);
        }

        if (!result.Succeeded)
        {
            logger.LogWarning("Powering on host {Host} failed with {Code}: {Error}", name, result.ExitCode, result.StandardError.Trim());
            throw new XenApiException(ErrorCodes.InternalError, $"The host failed to power on: {result.StandardError.Trim()}");
        }

        logger.LogInformation("Host {Host} powered on ({Mode})", name, host.Get(XenApi.Host.PowerOnMode));
    }

    /// <summary>
    /// ipmitool's arguments for the host's BMC. The password is the value of the secret <c>power_on_password_secret</c>
    /// names (a plain <c>power_on_password</c> only in a config stored before passwords became secrets). ipmitool takes
    /// it through its environment (<c>-E</c>, <c>IPMI_PASSWORD</c>), never on a command line that every process can read.
    /// </summary>
    private async Task<(string[] Arguments, string Password)> BmcAsync(IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken)
    {
        var password = await PowerOnPassword.ReadAsync(database, config, cancellationToken) ?? "";
        return (["-I", "lanplus", "-H", config.GetValueOrDefault("power_on_ip", ""), "-U", config.GetValueOrDefault("power_on_user", ""), "-E"], password);
    }

    private void Log(string host, string how, CommandResult result)
    {
        if (result.Succeeded)
        {
            logger.LogWarning("HA: host {Host} power-fenced ({How})", host, how);
        }
        else
        {
            logger.LogWarning("HA: power-fencing host {Host} ({How}) failed with {Code}: {Error}", host, how, result.ExitCode, result.StandardError.Trim());
        }
    }
}
