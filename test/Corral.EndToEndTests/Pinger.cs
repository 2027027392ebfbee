using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
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
        var lines = (await _output).Split('\n');
        var summary = lines.First(l => l.Contains("packets transmitted", StringComparison.Ordinal));
        var sent = int.Parse(summary.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture);
        Assert.True(sent > 20, summary);

        // ping stops at once on SIGINT, so the packets of its last second (its -W 1 wait) may still be on their way and
        // are not counted either way; every earlier one had its full second to be answered. Callers stop well after
        // what they test (a migration) has ended.
        var answered = lines.Where(l => l.Contains(" bytes from ", StringComparison.Ordinal))
            .Select(l => Regex.Match(l, @"icmp_seq=(\d+)")).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();
        Lost = Enumerable.Range(1, Math.Max(0, sent - InFlightAtStop)).Where(seq => !answered.Contains(seq)).ToList();
        return Lost.Count;
    }

    /// <summary>One second of packets at -i 0.1.</summary>
    private const int InFlightAtStop = 10;

    /// <summary>After <see cref="StopAsync"/>: the sequence numbers that were never answered.</summary>
    public IReadOnlyList<int> Lost { get; private set; } = [];

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.Dispose();
    }
}
