using System.Threading.Channels;
using Corral.Hypervisor;
using Microsoft.Extensions.Logging;

namespace Corral.WebConsole.Consoles;

/// <summary>
/// Shares each VM's serial line among every browser watching it: QEMU's serial socket serves one client at a time, so
/// this host holds that one connection while anyone watches, sends what the guest writes to all of them and passes
/// their keystrokes on.
/// </summary>
public sealed class SerialConsoleHub(ILogger<SerialConsoleHub> logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, SerialLine> _lines = new(StringComparer.Ordinal);

    /// <summary>Starts watching the serial line of a VM running here; dispose the viewer to stop.</summary>
    public async Task<SerialConsoleViewer> WatchAsync(IVmProcess process, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_lines.TryGetValue(process.VmUuid, out var line) || line.Ended || line.Closing || line.Process != process)
            {
                var stream = await process.OpenConsoleAsync(VmConsoleKind.Serial, cancellationToken);
                line = new SerialLine(process, stream, this, logger);
                _lines[process.VmUuid] = line;
                line.Start();
            }

            return line.AddViewer();
        }
        finally
        {
            _gate.Release();
        }
    }

    internal async Task ForgetAsync(SerialLine line)
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            if (_lines.TryGetValue(line.Process.VmUuid, out var current) && current == line)
            {
                _lines.Remove(line.Process.VmUuid);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<SerialLine> lines;
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            lines = [.. _lines.Values];
            _lines.Clear();
        }
        finally
        {
            _gate.Release();
        }

        foreach (var line in lines)
        {
            await line.DisposeAsync();
        }

        _gate.Dispose();
    }
}

/// <summary>One VM's serial connection and the viewers it feeds.</summary>
internal sealed class SerialLine(IVmProcess process, Stream stream, SerialConsoleHub hub, ILogger logger) : IAsyncDisposable
{
    // A viewer that stops reading loses the oldest output rather than holding up the others.
    private const int ViewerBacklog = 1024;

    private readonly Lock _viewersGate = new();
    private readonly List<SerialConsoleViewer> _viewers = [];
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _reading = Task.CompletedTask;

    public IVmProcess Process { get; } = process;

    public bool Ended { get; private set; }

    /// <summary>The last viewer left and the line is being let go: a new viewer needs a new connection.</summary>
    public bool Closing => _stop.IsCancellationRequested;

    public void Start() => _reading = ReadAsync(_stop.Token);

    public SerialConsoleViewer AddViewer()
    {
        var output = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(ViewerBacklog)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        var viewer = new SerialConsoleViewer(this, output);
        lock (_viewersGate)
        {
            if (Ended)
            {
                output.Writer.TryComplete();
            }
            else
            {
                _viewers.Add(viewer);
            }
        }

        return viewer;
    }

    public async Task WriteAsync(ReadOnlyMemory<byte> input, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await stream.WriteAsync(input, cancellationToken);
            await stream.FlushAsync(cancellationToken);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public async Task RemoveViewerAsync(SerialConsoleViewer viewer)
    {
        bool last;
        lock (_viewersGate)
        {
            _viewers.Remove(viewer);
            last = _viewers.Count == 0;
        }

        if (last)
        {
            // Nobody watches: let QEMU's socket go, for the next viewer (or another tool) to take.
            await CloseAsync();
        }
    }

    public async Task CloseAsync()
    {
        await _stop.CancelAsync();
        await stream.DisposeAsync();
        try
        {
            await _reading;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Closed under the reader, as meant.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        _stop.Dispose();
        _writeGate.Dispose();
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    break;
                }

                var chunk = buffer[..read];
                lock (_viewersGate)
                {
                    foreach (var viewer in _viewers)
                    {
                        viewer.Output.Writer.TryWrite(chunk);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogDebug(ex, "The serial line of VM {Vm} ended", Process.VmUuid);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Closed by the last viewer leaving.
        }
        finally
        {
            lock (_viewersGate)
            {
                Ended = true;
                foreach (var viewer in _viewers)
                {
                    viewer.Output.Writer.TryComplete();
                }
            }

            await hub.ForgetAsync(this);
        }
    }
}

/// <summary>One browser's view of a serial line: what the guest writes, and a way to type.</summary>
public sealed class SerialConsoleViewer : IAsyncDisposable
{
    private readonly SerialLine _line;
    private int _disposed;

    internal SerialConsoleViewer(SerialLine line, Channel<byte[]> output)
    {
        _line = line;
        Output = output;
    }

    internal Channel<byte[]> Output { get; }

    /// <summary>What the guest writes from now on; completes when the line ends (the VM stopped or left this host).</summary>
    public ChannelReader<byte[]> Received => Output.Reader;

    public Task TypeAsync(ReadOnlyMemory<byte> input, CancellationToken cancellationToken) => _line.WriteAsync(input, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Output.Writer.TryComplete();
            await _line.RemoveViewerAsync(this);
        }
    }
}
