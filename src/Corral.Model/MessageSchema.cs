namespace Corral.Model;

/// <summary>A XenAPI message as xapi's datamodel declares it: <c>VM.start(session, vm, start_paused, force)</c>.</summary>
/// <param name="Session">The first argument on the wire is the caller's session (not in <paramref name="Parameters"/>).</param>
/// <param name="Result">The result's type as xapi spells it (<c>void</c>, <c>VM ref</c>, <c>(string -> string) map</c>).</param>
/// <param name="Roles">The roles allowed to call it (RBAC), as xapi lists them.</param>
/// <param name="Implicit">Made from the class's fields and kind (getters, setters, get_all, create...) rather than declared.</param>
public sealed record MessageSchema(
    string ClassName,
    string Name,
    bool Session,
    IReadOnlyList<ParameterSchema> Parameters,
    string Result,
    IReadOnlyList<string> Errors,
    IReadOnlyList<string> Roles,
    bool Implicit,
    Lifecycle Lifecycle)
{
    /// <summary>The name clients call: <c>VM.start</c>.</summary>
    public string WireName => $"{ClassName}.{Name}";

    /// <summary>The fewest parameters (session not counted) a caller may send: trailing ones with defaults may be left off.</summary>
    public int RequiredCount => Parameters.Count - Parameters.Reverse().TakeWhile(p => p.HasDefault).Count();

    public override string ToString() => WireName;
}

/// <summary>One parameter of a message; one with a <see cref="Default"/> may be left off the end of the argument list.</summary>
public sealed record ParameterSchema(string Name, FieldType Type, object? Default = null)
{
    public bool HasDefault => Default is not null;
}
