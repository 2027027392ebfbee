using System.Diagnostics;
using Corral.Platform;
using Corral.Storage.Nfs;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// libnfs's synchronous calls while child processes end around them, as in the agent (qemu-img, QEMU, iSCSI tools):
/// each ending sends this process SIGCHLD, which interrupts a libnfs wait on the thread that takes it ("Poll failed").
/// <see cref="NativeBlockingCall"/> keeps the signal off the threads that wait on libnfs.
/// </summary>
public sealed class NfsSignalTests : IAsyncLifetime
{
    private NfsRig _nfs = null!;

    public async Task InitializeAsync() => _nfs = await NfsRig.StartAsync();

    public async Task DisposeAsync() => await _nfs.DisposeAsync();

    [Fact]
    public async Task No_nfs_call_fails_for_a_child_process_ending()
    {
        Directory.CreateDirectory(Path.Combine(_nfs.ExportDirectory, "signals"));
        using var stop = new CancellationTokenSource();
        var ended = 0;
        var children = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var child = Process.Start("/bin/true")!;
                await child.WaitForExitAsync();
                Interlocked.Increment(ref ended);
            }
        })).ToList();
        try
        {
            // Calls until 200 children have ended meanwhile (each ending a signal to this process).
            for (var calls = 0; Volatile.Read(ref ended) < 200; calls++)
            {
                Assert.True(calls < 5000, $"only {ended} child processes ended in {calls} calls");
                // As the SR driver calls libnfs: a mount, a call, an unmount, on a thread of NativeBlockingCall's.
                Assert.Empty(await NativeBlockingCall.Run(() =>
                {
                    using var session = NfsSession.Mount(NfsRig.Server, _nfs.Export, 3, TimeSpan.FromSeconds(10));
                    return session.List("/signals");
                }, default));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(children);
        }
    }
}
