using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// Refuses an unsafe HA timing budget at start, naming each inequality it breaks (section <c>Corral:Ha</c>), and a
/// statefile mount directory that is not an absolute path (the fence daemon is told it, from another working directory).
/// </summary>
public sealed class HaOptionsValidation : IValidateOptions<HaOptions>
{
    public ValidateOptionsResult Validate(string? name, HaOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Timings.Problems().ToList();
        if (!Path.IsPathFullyQualified(options.StatefileMountDirectory))
        {
            problems.Add($"StatefileMountDirectory must be an absolute path, not \"{options.StatefileMountDirectory}\"");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Select(p => "Corral:Ha: " + p));
    }
}
