using Corral.Model;

namespace Corral.Api.Dispatch;

/// <summary>One parameter of a XenAPI message (the session parameter is implicit).</summary>
/// <param name="Default">
/// What a caller that leaves the parameter off gets, as xapi's datamodel declares it (null: the caller must send it).
/// Only trailing parameters have defaults.
/// </param>
public sealed record ApiParameter(string Name, FieldType Type, object? Default = null)
{
    public bool HasDefault => Default is not null;
}

public delegate Task<object?> ApiHandler(CallContext context, object?[] arguments, CancellationToken cancellationToken);

/// <summary>
/// A XenAPI message: <c>Class.name</c>, its parameters in wire order, and what runs it. Messages of xapi's datamodel
/// take their signature from it (<see cref="Schema"/>); Corral's own (<c>pool.corral_*</c>) declare theirs.
/// </summary>
/// <param name="Handler">What runs it; null for a datamodel message Corral does not implement (NOT_IMPLEMENTED).</param>
public sealed record ApiMethod(string Name, IReadOnlyList<ApiParameter> Parameters, ApiHandler? Handler, bool RequiresSession = true)
{
    /// <summary>The datamodel's declaration, or null for Corral's own messages.</summary>
    public MessageSchema? Schema { get; init; }

    public bool IsImplemented => Handler is not null;

    /// <summary>The fewest arguments a caller may send, the session not counted: trailing defaulted ones may be left off.</summary>
    public int RequiredCount => Parameters.Count - Parameters.Reverse().TakeWhile(p => p.HasDefault).Count();

    /// <summary>
    /// True when xapi takes any argument count from <see cref="RequiredCount"/> up (a message with defaults; extra
    /// arguments are ignored), rather than exactly <see cref="Parameters"/>' count.
    /// </summary>
    public bool AcceptsShorterLists => Parameters.Any(p => p.HasDefault);

    public static ApiMethod FromSchema(MessageSchema message) =>
        new(message.WireName, message.Parameters.Select(p => new ApiParameter(p.Name, p.Type, p.Default)).ToList(), null, message.Session)
        {
            Schema = message,
        };
}

/// <summary>Who is calling and from where; handed to every handler.</summary>
public sealed record CallContext(string SessionRef, string RemoteAddress, string MethodName)
{
    /// <summary>The task this call runs under when it came in as <c>Async.*</c>, else null.</summary>
    public string? TaskRef { get; init; }
}
