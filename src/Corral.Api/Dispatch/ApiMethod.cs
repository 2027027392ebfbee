using Corral.Model;

namespace Corral.Api.Dispatch;

/// <summary>One parameter of a XenAPI message (the session parameter is implicit).</summary>
public sealed record ApiParameter(string Name, FieldType Type);

public delegate Task<object?> ApiHandler(CallContext context, object?[] arguments, CancellationToken cancellationToken);

/// <summary>A XenAPI message: <c>Class.name</c>, its parameters in wire order, and what runs it.</summary>
public sealed record ApiMethod(string Name, IReadOnlyList<ApiParameter> Parameters, ApiHandler Handler, bool RequiresSession = true)
{
    /// <summary>The number of arguments on the wire, counting the session.</summary>
    public int WireArity => Parameters.Count + (RequiresSession ? 1 : 0);
}

/// <summary>Who is calling and from where; handed to every handler.</summary>
public sealed record CallContext(string SessionRef, string RemoteAddress, string MethodName)
{
    /// <summary>The task this call runs under when it came in as <c>Async.*</c>, else null.</summary>
    public string? TaskRef { get; init; }
}
