using Corral.Api.Operations;

namespace Corral.Agent.Operations;

/// <summary>Carries out operations of some kinds on this host. Returns the task result (a reference, or null).</summary>
public interface IHostOperationHandler
{
    IReadOnlyCollection<string> Kinds { get; }

    /// <summary>
    /// Runs or resumes <paramref name="operation"/>. It may be called again for the same operation after a crash, from
    /// its last persisted <see cref="HostOperation.Step"/>, so each step must be safe to repeat.
    /// </summary>
    Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken);
}

/// <summary>Persists an operation's step, so that a restarted agent resumes from there.</summary>
public sealed class OperationProgress(Func<HostOperation, CancellationToken, Task<HostOperation>> save, HostOperation operation)
{
    public HostOperation Current { get; private set; } = operation;

    public async Task StepAsync(string step, CancellationToken cancellationToken, IDictionary<string, string>? arguments = null)
    {
        var next = Current with { Step = step };
        if (arguments is not null)
        {
            var merged = new Dictionary<string, string>(Current.Arguments);
            foreach (var (k, v) in arguments)
            {
                merged[k] = v;
            }

            next = next with { Arguments = merged };
        }

        Current = await save(next, cancellationToken);
    }
}
