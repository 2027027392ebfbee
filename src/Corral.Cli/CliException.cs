namespace Corral.Cli;

/// <summary>A user-facing failure: <see cref="Render"/> is exactly what xe prints on stderr; the exit code is 1.</summary>
public class CliException(string message) : Exception(message)
{
    public virtual string Render() => Message;
}

/// <summary>xe's <c>Cli_failure</c> and <c>Record_failure</c>: printed as <c>Error: &lt;message&gt;</c>.</summary>
public sealed class XeFailure(string message) : CliException(message)
{
    public override string Render() => "Error: " + Message;
}

/// <summary>
/// xe's parameter errors (<c>Unknown command</c>, <c>Syntax error</c>, <c>Required parameter not found</c>,
/// <c>Authentication failed</c>): <c>&lt;kind&gt;: &lt;detail&gt;</c> then <c>For usage run: 'xe help'</c>.
/// </summary>
public sealed class XeUsageError(string kind, string detail) : CliException(kind.Length == 0 ? detail : $"{kind}: {detail}")
{
    public string Kind => kind;

    public string Detail => detail;

    public override string Render() => Message + "\nFor usage run: 'xe help'";

    public static XeUsageError UnknownCommand(string name) => new("Unknown command", name);

    public static XeUsageError Syntax(string detail = "") => new("Syntax error", detail);

    public static XeUsageError RequiredParameter(string name) => new("Required parameter not found", name);
}

/// <summary>
/// xe's <c>CLI_failed_to_find_param</c>: a parameter name that is not a field of the record. xe reports it as a server
/// error it has no description for, <c>Error code: Missing parameter</c> / <c>Error parameters: &lt;name&gt;</c>.
/// </summary>
public sealed class XeMissingParameter(string name) : CliException(name)
{
    public override string Render() => $"Error code: Missing parameter\nError parameters: {Message}";
}

/// <summary>Some of the objects of a --multiple operation failed: xe prints one line per failure on stdout.</summary>
public sealed class XeMultipleFailure(IReadOnlyList<(string Uuid, string Message)> failures)
    : CliException(string.Join("\n", failures.Select(f => $"operation failed on {f.Uuid}: {f.Message}")))
{
    public IReadOnlyList<(string Uuid, string Message)> Failures => failures;
}
