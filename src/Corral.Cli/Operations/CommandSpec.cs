using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Output;
using Corral.Cli.Records;

namespace Corral.Cli.Operations;

[Flags]
public enum CommandFlags
{
    None = 0,

    /// <summary>Listed by <c>xe help</c> among the common commands.</summary>
    Standard = 1,

    /// <summary>Takes xe's VM selectors (<c>vm=</c>, <c>uuid=</c>, any field filter, <c>--multiple</c>).</summary>
    VmSelectors = 2,

    HostSelectors = 4,

    SrSelectors = 8,

    /// <summary>Left out of <c>xe help</c>.</summary>
    Hidden = 16,

    /// <summary>Runs without logging in (help).</summary>
    NoSession = 32,

    /// <summary>
    /// Logs in on the server named, not its master, against that host's own copy of the credentials
    /// (<c>session.slave_local_login_with_password</c>): the emergency commands, run while the pool database is down.
    /// </summary>
    LocalLogin = 64,
}

/// <summary>One xe command: its name, required and optional parameters, help text, and what it does.</summary>
public sealed record CommandSpec(
    string Name,
    IReadOnlyList<string> Required,
    IReadOnlyList<string> Optional,
    string Help,
    CommandFlags Flags,
    Func<CommandContext, CancellationToken, Task> Run);

/// <summary>What a running command has at hand.</summary>
public sealed class CommandContext(XeParams parameters, XenApiSession session, PoolCache cache, XePrinter printer, TextReader input, CommandRegistry registry)
{
    public XeParams Params => parameters;

    public XenApiSession Session => session;

    public PoolCache Cache => cache;

    public XePrinter Printer => printer;

    /// <summary>The user's terminal, for the confirmations xe asks for.</summary>
    public TextReader Input => input;

    public CommandRegistry Registry => registry;

    public RecordEngine Records { get; } = new(cache, session);

    /// <summary>Calls a XenAPI method with the session.</summary>
    public Task<object?> CallAsync(string method, CancellationToken cancellationToken, params object?[] args) =>
        session.CallAsync(method, cancellationToken, args);

    public Task<string> CallForStringAsync(string method, CancellationToken cancellationToken, params object?[] args) =>
        session.CallForStringAsync(method, cancellationToken, args);
}
