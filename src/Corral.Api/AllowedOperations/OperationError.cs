using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Why an operation may not run on an object now: xapi's error code and parameters, in xapi's order. The same value
/// leaves an operation out of <c>allowed_operations</c> and is raised when a caller asks for it anyway.
/// </summary>
public sealed record OperationError(string Code, IReadOnlyList<string> Parameters)
{
    public static OperationError Of(string code, params string[] parameters) => new(code, parameters);

    public XenApiException ToException() => new(Code, [.. Parameters]);

    public override string ToString() => Parameters.Count == 0 ? Code : $"{Code} [{string.Join(", ", Parameters)}]";
}

/// <summary>The operations in progress on an object (<c>current_operations</c>): task reference and operation, in the map's order.</summary>
public sealed record InProgress<TOp>(IReadOnlyList<KeyValuePair<string, TOp>> Entries)
    where TOp : struct, Enum
{
    public bool IsEmpty => Entries.Count == 0;

    public bool Contains(TOp op) => Entries.Any(e => EqualityComparer<TOp>.Default.Equals(e.Value, op));

    public bool Any(Func<TOp, bool> predicate) => Entries.Any(e => predicate(e.Value));

    /// <summary>The first entry whose operation satisfies <paramref name="predicate"/>.</summary>
    public KeyValuePair<string, TOp>? First(Func<TOp, bool> predicate) =>
        Entries.Where(e => predicate(e.Value)).Select(e => (KeyValuePair<string, TOp>?)e).FirstOrDefault();
}

/// <summary>Makes <see cref="InProgress{TOp}"/> values.</summary>
public static class InProgress
{
    public static InProgress<TOp> None<TOp>()
        where TOp : struct, Enum => new([]);

    public static InProgress<TOp> Of<TOp>(params (string Task, TOp Op)[] entries)
        where TOp : struct, Enum => new(entries.Select(e => new KeyValuePair<string, TOp>(e.Task, e.Op)).ToList());
}
