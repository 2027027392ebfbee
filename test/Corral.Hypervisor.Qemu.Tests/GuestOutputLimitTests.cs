using System.Text;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>What a guest writes reaches its host bounded: lines by length, the serial console log by size.</summary>
public sealed class GuestOutputLimitTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-output-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Lines_longer_than_the_limit_are_skipped_whole_and_the_rest_read_as_written()
    {
        var text = "short\r\n" + new string('a', 100) + "\n" + new string('b', 16) + "\n" + new string('c', 17) + "\nlast\npartial";
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var reader = new BoundedLineReader(stream, maxLineBytes: 16);
        var lines = new List<string>();
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line)
        {
            lines.Add(line);
        }

        Assert.Equal(["short", new string('b', 16), "last"], lines);
        Assert.Equal(2, reader.SkippedLines);
    }

    [Fact]
    public async Task The_console_log_is_set_aside_past_its_size_and_its_tail_reads_across_both_parts()
    {
        var log = Path.Combine(_dir, "console.log");
        await File.WriteAllTextAsync(log, "boot messages\n");
        Assert.False(ConsoleLogFile.KeepBounded(log, maxBytes: 64));

        // QEMU holds the log open for appending (O_APPEND, which .NET's FileMode.Append is not) while it is set aside,
        // and goes on appending after: a shell holding the same kind of descriptor plays it.
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in new[] { "-c", "exec 3>>\"$0\"; printf '%s' \"$1\" >&3; read _; printf 'after\\n' >&3", log, new string('x', 100) + "END1\n" })
        {
            info.ArgumentList.Add(argument);
        }

        using (var qemu = System.Diagnostics.Process.Start(info)!)
        {
            while (new FileInfo(log).Length < 100)
            {
                await Task.Delay(20);
            }

            Assert.True(ConsoleLogFile.KeepBounded(log, maxBytes: 64));
            await qemu.StandardInput.WriteLineAsync("go");
            await qemu.StandardInput.FlushAsync();
            await qemu.WaitForExitAsync();
        }

        Assert.Equal("after\n", await File.ReadAllTextAsync(log));
        var previous = await File.ReadAllTextAsync(ConsoleLogFile.PreviousPath(log));
        Assert.Equal(64, previous.Length);
        Assert.EndsWith("END1\n", previous, StringComparison.Ordinal);

        var tail = Encoding.UTF8.GetString(await ConsoleLogFile.ReadTailAsync(log, 16, CancellationToken.None));
        Assert.Equal("xxxxxEND1\nafter\n", tail);
        Assert.Empty(await ConsoleLogFile.ReadTailAsync(Path.Combine(_dir, "none.log"), 16, CancellationToken.None));
    }

    [Fact]
    public void Limits_that_would_lose_a_boot_log_or_make_a_live_agent_look_stale_are_refused()
    {
        Assert.Empty(new QemuOptions().Problems());
        Assert.Contains(new QemuOptions { ConsoleLogMaxBytes = 1000 }.Problems(), p => p.StartsWith("Corral:Qemu:ConsoleLogMaxBytes", StringComparison.Ordinal));
        Assert.Contains(new QemuOptions { GuestAgentPollInterval = TimeSpan.FromSeconds(6) }.Problems(), p => p.StartsWith("Corral:Qemu:GuestAgentPollInterval", StringComparison.Ordinal));
    }
}
