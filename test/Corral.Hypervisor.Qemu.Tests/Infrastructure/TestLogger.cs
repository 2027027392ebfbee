using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>Writes the code under test's log into the test's output, so a failing integration test shows what QEMU was asked.</summary>
public sealed class TestLogger<T>(ITestOutputHelper output) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {formatter(state, exception)}{(exception is null ? "" : " | " + exception.Message)}");
        }
        catch (InvalidOperationException)
        {
            // Background loops may log after the test has finished; xunit no longer takes output then.
        }
    }
}
