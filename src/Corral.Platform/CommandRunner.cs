using System.Diagnostics;
using System.Text;

namespace Corral.Platform;

/// <summary>The outcome of one external command.</summary>
public sealed record CommandResult(int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>Thrown when a command Corral relies on (qemu-img, ip) fails; carries what it printed.</summary>
public sealed class CommandFailedException(string command, CommandResult result)
    : Exception($"'{command}' exited with {result.ExitCode}: {result.StandardError.Trim()}")
{
    public string Command { get; } = command;

    public CommandResult Result { get; } = result;
}

/// <summary>Runs external programs without a shell, so arguments are never re-parsed.</summary>
public static class CommandRunner
{
    /// <param name="environment">Variables added to the child's environment: the way to hand it a secret, which a command line would show every process.</param>
    public static async Task<CommandResult> RunAsync(string program, IEnumerable<string> arguments, CancellationToken cancellationToken,
        TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            // The child is ours (started here, not a daemon), so killing it by this handle is exact. Only it: finding
            // its descendants reads every process's /proc/<pid>/stat, which blocks for good on a process stuck in
            // I/O on storage that stopped answering (a FUSE export of a lost path), as a timed-out command often is.
            process.Kill();
            throw;
        }

        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs the command and throws <see cref="CommandFailedException"/> unless it exits 0.</summary>
    public static async Task<string> RunCheckedAsync(string program, IEnumerable<string> arguments, CancellationToken cancellationToken,
        TimeSpan? timeout = null)
    {
        var list = arguments.ToList();
        var result = await RunAsync(program, list, cancellationToken, timeout);
        if (!result.Succeeded)
        {
            throw new CommandFailedException(Describe(program, list), result);
        }

        return result.StandardOutput;
    }

    public static string Describe(string program, IEnumerable<string> arguments)
    {
        var text = new StringBuilder(program);
        foreach (var a in arguments)
        {
            text.Append(' ').Append(a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a);
        }

        return text.ToString();
    }
}
