using Corral.Api.Https;
using Corral.PoolDatabase.Etcd;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Hosting;

/// <summary>
/// The settings the agent reads before it touches anything (its state directory, certificates, etcd member), checked
/// together: a bad value, or one that is not even of the setting's type, stops the agent at start with a message
/// naming the setting, as an administrator editing <c>/etc/corral/agent.conf</c> needs.
/// </summary>
public sealed record StartupSettings(AgentOptions Agent, HttpsOptions Https, EtcdOptions Etcd)
{
    /// <summary>EX_CONFIG (sysexits.h): the package's unit does not restart an agent that exits with it (RestartPreventExitStatus).</summary>
    public const int RefusedExitCode = 78;

    public static readonly EventId Refused = new(2501, "SettingRefused");

    /// <summary>Binds and checks the settings; throws <see cref="OptionsValidationException"/> listing every problem.</summary>
    public static StartupSettings Read(IConfiguration configuration)
    {
        AgentOptions agent;
        HttpsOptions https;
        EtcdOptions etcd;
        try
        {
            agent = configuration.GetSection("Corral:Agent").Get<AgentOptions>() ?? new AgentOptions();
            https = configuration.GetSection(HttpsOptions.Section).Get<HttpsOptions>() ?? new HttpsOptions();
            etcd = configuration.GetSection("Corral:Etcd").Get<EtcdOptions>() ?? new EtcdOptions();
        }
        catch (InvalidOperationException ex) when (ex.InnerException is not null)
        {
            // The binder's own words name the setting ("Failed to convert configuration value at 'Corral:Https:HttpsPort'
            // to type 'System.Int32'."); the inner exception says what the value was.
            throw new OptionsValidationException("Corral", typeof(StartupSettings), [$"{ex.Message} {ex.InnerException.Message}"]);
        }

        var problems = agent.Problems().Concat(https.Problems()).Concat(etcd.Problems()).ToList();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException("Corral", typeof(StartupSettings), problems);
        }

        return new StartupSettings(agent, https, etcd);
    }

    /// <summary>Logs each refused setting; returns the exit status the agent ends with.</summary>
    public static int Refuse(ILogger logger, OptionsValidationException refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        foreach (var failure in refused.Failures)
        {
            logger.LogCritical(Refused, "Refusing to start: {Problem}", failure);
        }

        return RefusedExitCode;
    }
}
