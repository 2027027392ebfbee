using System.Diagnostics;

namespace Corral.Packaging.Tests;

/// <summary>Runs a command and returns its exit status and what it printed (stdout, then stderr).</summary>
public static class Processes
{
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, bool clearEnvironment = false, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        if (clearEnvironment)
        {
            start.Environment.Clear();
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(1));
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not end within {timeout ?? TimeSpan.FromMinutes(1)}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
