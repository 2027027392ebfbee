namespace Corral.Agent.Operations;

/// <summary>Event ids of the host operation worker's decisions that an operator may have to act on.</summary>
public static class HostOperationEvents
{
    /// <summary>The end of an operation could not be written yet (its caller waits on its task): tried again.</summary>
    public static readonly EventId RecordRetried = new(2601, nameof(RecordRetried));

    /// <summary>An operation ended and its outcome could not be recorded at all: its caller waits out its timeout.</summary>
    public static readonly EventId Unrecorded = new(2602, nameof(Unrecorded));
}

/// <summary>How an operation's handler ended: its result, or the XenAPI error its caller gets.</summary>
internal sealed record OperationOutcome(string? Result, IReadOnlyList<string>? Error)
{
    public static OperationOutcome Succeeded(string? result) => new(result, null);

    public static OperationOutcome Failed(IReadOnlyList<string> error) => new(null, error);
}
