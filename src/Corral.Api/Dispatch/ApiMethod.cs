using Corral.Model;

namespace Corral.Api.Dispatch;

/// <summary>One parameter of a XenAPI message (the session parameter is implicit).</summary>
/// <param name="Optional">
/// A parameter the XenAPI added in a later release, with a default (as xapi gives them): older clients leave it off the
/// wire. Only trailing parameters may be optional.
/// </param>
public sealed record ApiParameter(string Name, FieldType Type, bool Optional = false);

public delegate Task<object?> ApiHandler(CallContext context, object?[] arguments, CancellationToken cancellationToken);

/// <summary>A XenAPI message: <c>Class.name</c>, its parameters in wire order, and what runs it.</summary>
public sealed record ApiMethod(string Name, IReadOnlyList<ApiParameter> Parameters, ApiHandler Handler, bool RequiresSession = true)
{
    /// <summary>The number of arguments on the wire, counting the session.</summary>
    public int WireArity => Parameters.Count + (RequiresSession ? 1 : 0);

    /// <summary>The fewest arguments accepted: the optional trailing parameters left off.</summary>
    public int MinimumWireArity => WireArity - Parameters.Reverse().TakeWhile(p => p.Optional).Count();
}

/// <summary>Who is calling and from where; handed to every handler.</summary>
public sealed record CallContext(string SessionRef, string RemoteAddress, string MethodName)
{
    /// <summary>The task this call runs under when it came in as <c>Async.*</c>, else null.</summary>
    public string? TaskRef { get; init; }
}
