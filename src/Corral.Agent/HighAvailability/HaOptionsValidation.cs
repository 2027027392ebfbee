using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>Refuses an unsafe HA timing budget at start, naming each inequality it breaks (section <c>Corral:Ha</c>).</summary>
public sealed class HaOptionsValidation : IValidateOptions<HaOptions>
{
    public ValidateOptionsResult Validate(string? name, HaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Timings.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Select(p => "Corral:Ha: " + p));
    }
}
