using Microsoft.Extensions.Options;

namespace Corral.Api;

/// <summary>Options that say what is wrong with them, each problem naming its setting.</summary>
public interface IOptionsWithProblems
{
    IReadOnlyList<string> Problems();
}

/// <summary>Refuses, at start, options with problems (<see cref="IOptionsWithProblems.Problems"/>), listing them all.</summary>
public sealed class ProblemsValidation<TOptions> : IValidateOptions<TOptions>
    where TOptions : class, IOptionsWithProblems
{
    public ValidateOptionsResult Validate(string? name, TOptions options) =>
        options.Problems() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
