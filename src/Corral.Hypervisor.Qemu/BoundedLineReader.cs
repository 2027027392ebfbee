using System.Text;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Reads newline-ended UTF-8 lines from a stream a guest writes into, holding at most <see cref="MaxLineBytes"/> of
/// one line: a longer line is skipped up to its newline (counted in <see cref="SkippedLines"/>), so an endless line
/// costs the host a fixed buffer, never memory without bound.
/// </summary>
public sealed class BoundedLineReader(Stream stream, int maxLineBytes)
{
    private readonly byte[] _buffer = new byte[Math.Max(maxLineBytes, 1) + 1];
    private int _start;
    private int _end;
    private bool _skipping;

    public int MaxLineBytes => maxLineBytes;

    /// <summary>Lines skipped for their length since this reader was made.</summary>
    public long SkippedLines { get; private set; }

    /// <summary>
    /// Discards everything up to and including the next <paramref name="delimiter"/> byte (a partial line too), for a
    /// protocol that marks a point to resynchronise at (the guest agent's 0xFF). False at the end of the stream.
    /// </summary>
    public async Task<bool> SkipPastAsync(byte delimiter, CancellationToken cancellationToken)
    {
        while (true)
        {
            var at = Array.IndexOf(_buffer, delimiter, _start, _end - _start);
            if (at >= 0)
            {
                _start = at + 1;
                _skipping = false;
                return true;
            }

            _start = _end = 0;
            var read = await stream.ReadAsync(_buffer.AsMemory(), cancellationToken);
            if (read == 0)
            {
                return false;
            }

            _end = read;
        }
    }

    /// <summary>The next line (without its newline, a trailing CR dropped), or null at the end of the stream.</summary>
    public async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                var line = _buffer.AsSpan(_start, newline - _start);
                _start = newline + 1;
                if (_skipping)
                {
                    _skipping = false;
                    continue;
                }

                return Encoding.UTF8.GetString(line.EndsWith("\r"u8) ? line[..^1] : line);
            }

            if (_end - _start > maxLineBytes || (_skipping && _end > _start))
            {
                // Too long for a line: drop what is held and everything up to the next newline.
                if (!_skipping)
                {
                    SkippedLines++;
                }

                _skipping = true;
                _start = _end = 0;
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                return null;
            }

            _end += read;
        }
    }
}
