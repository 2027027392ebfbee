using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary><c>ping -i 0.1</c> in the background; <see cref="StopAsync"/> ends it and returns how many were lost.</summary>
public sealed class Pinger : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _output;

    private Pinger(string ip)
    {
        _process = Process.Start(new ProcessStartInfo("ping", ["-i", "0.1", "-W", "1", ip]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        _output = _process.StandardOutput.ReadToEndAsync();
    }

    public static Pinger Start(string ip) => new(ip);

    public async Task<int> StopAsync()
    {
        // SIGINT, so that ping prints its summary.
        using (var kill = Process.Start("kill", ["-INT", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync();
        var summary = (await _output).Split('\n').First(l => l.Contains("packets transmitted", StringComparison.Ordinal));
        var numbers = summary.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var sent = int.Parse(numbers[0], CultureInfo.InvariantCulture);
        var received = int.Parse(numbers[3], CultureInfo.InvariantCulture);
        Assert.True(sent > 20, summary);
        return sent - received;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.Dispose();
    }
}
