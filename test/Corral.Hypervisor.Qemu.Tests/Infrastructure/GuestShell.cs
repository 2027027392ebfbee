using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>Runs a command on a test guest's serial console (its root shell) and reads the answer from the console log.</summary>
public static class GuestShell
{
    private static int _calls;

    /// <summary>
    /// Types <c>echo "TAG-$((1+1)): $(command | tr '\n' ' ') :END-$((2+2))"</c>: the terminal's echo of the typed line
    /// still reads <c>$((1+1))</c>, so only the shell's whole answer matches <c>TAG-2: ... :END-4</c>. Returns the words
    /// the command printed. A line typed while the shell is not reading yet (it starts just after the boot's last line)
    /// is lost, so an unanswered line is typed again, with a new tag, every few seconds.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RunAsync(IVmProcess process, string consoleLog, string command, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            var tag = $"CQ{Interlocked.Increment(ref _calls)}X{Environment.TickCount64 % 100000}";
            // Held open until answered: QEMU drops what the guest's serial port has not taken yet when the client goes.
            await using var console = await process.OpenConsoleAsync(VmConsoleKind.Serial, CancellationToken.None);
            await console.WriteAsync(Encoding.ASCII.GetBytes($"echo \"{tag}-$((1+1)): $({command} 2>&1 | tr '\\n' ' ') :END-$((2+2))\"\n"));
            await console.FlushAsync();
            var answer = new Regex(Regex.Escape(tag) + "-2: ([^\r\n]*) :END-4");
            var attempt = Stopwatch.StartNew();
            while (attempt.Elapsed < TimeSpan.FromSeconds(5))
            {
                if (File.Exists(consoleLog) && answer.Match(await File.ReadAllTextAsync(consoleLog)) is { Success: true } match)
                {
                    return match.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                }

                await Task.Delay(100);
            }
        }

        var log = File.Exists(consoleLog) ? await File.ReadAllTextAsync(consoleLog) : "(no console log)";
        throw new TimeoutException($"no answer to '{command}' on the console within {timeout.TotalSeconds} s; its end:\n{log[Math.Max(0, log.Length - 1500)..]}");
    }

    /// <summary>Asks again until the answer satisfies <paramref name="wanted"/> (a device takes a moment to appear or go).</summary>
    public static async Task<IReadOnlyList<string>> WaitForAsync(IVmProcess process, string consoleLog, string command,
        Func<IReadOnlyList<string>, bool> wanted, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        IReadOnlyList<string> last = [];
        while (watch.Elapsed < timeout)
        {
            last = await RunAsync(process, consoleLog, command, timeout);
            if (wanted(last))
            {
                return last;
            }

            await Task.Delay(500);
        }

        throw new TimeoutException($"'{command}' still answers '{string.Join(' ', last)}' after {timeout.TotalSeconds} s");
    }
}
