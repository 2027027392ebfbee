using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Corral.Model;

namespace Corral.Api.Xva;

/// <summary>
/// Reads an XVA as xapi's import does: plain tar, gzip or zstd (told by the first bytes), <c>ova.xml</c> first, then
/// each disk's chunks in order, each checked against the <c>.xxhash</c> or <c>.checksum</c> member after it. Errors are
/// xapi's: IMPORT_ERROR_UNEXPECTED_FILE, IMPORT_ERROR_PREMATURE_EOF, IMPORT_ERROR_GENERIC (a checksum that fails).
/// </summary>
public sealed class XvaReader : IAsyncDisposable
{
    private static readonly byte[] GzipMagic = [0x1f, 0x8b];
    private static readonly byte[] ZstdMagic = [0x28, 0xb5, 0x2f, 0xfd];

    private readonly Stream _decompressed;
    private readonly TarReader _tar;

    private XvaReader(Stream decompressed, XvaCompression compression, XvaHeader header)
    {
        _decompressed = decompressed;
        _tar = new TarReader(decompressed, leaveOpen: true);
        Compression = compression;
        Header = header;
    }

    public XvaCompression Compression { get; }

    public XvaHeader Header { get; private set; }

    /// <summary>Opens the archive and reads its <c>ova.xml</c>.</summary>
    public static async Task<XvaReader> OpenAsync(Stream input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var start = new byte[ZstdMagic.Length];
        var got = await input.ReadAtLeastAsync(start, start.Length, throwOnEndOfStream: false, cancellationToken);
        if (got == 0)
        {
            throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
        }

        var replayed = new ReplayStream(start.AsMemory(0, got), input);
        var compression = start.AsSpan(0, got).StartsWith(ZstdMagic) ? XvaCompression.Zstd
            : start.AsSpan(0, got).StartsWith(GzipMagic) ? XvaCompression.Gzip
            : XvaCompression.None;
        Stream decompressed = compression switch
        {
            XvaCompression.Gzip => new GZipStream(replayed, CompressionMode.Decompress),
            XvaCompression.Zstd => new ZstdSharp.DecompressionStream(replayed),
            _ => replayed,
        };
        var reader = new XvaReader(decompressed, compression, new XvaHeader(XvaVersion.Current(""), []));
        try
        {
            var first = await reader.NextAsync(cancellationToken) ?? throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
            if (first.Name != XvaFormat.OvaXml)
            {
                throw new XenApiException(ErrorCodes.ImportErrorUnexpectedFile, XvaFormat.OvaXml, first.Name);
            }

            reader.Header = XvaHeader.Parse(Encoding.UTF8.GetString(await ReadAllAsync(first, cancellationToken)));
            return reader;
        }
        catch
        {
            await reader.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Reads the chunks of the disk <paramref name="prefix"/> (of <paramref name="size"/> bytes) into
    /// <paramref name="target"/>; chunks left out are zeros, which the sparse target already holds. As xapi's import, a
    /// chunk goes where the one before it ended plus one chunk size per number skipped (so the empty keep-alive chunks
    /// xapi sends on a slow link take no room). With <paramref name="force"/>, a checksum that fails is ignored.
    /// </summary>
    public async Task ReadDiskAsync(string prefix, long size, Stream target, bool force, CancellationToken cancellationToken, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        long last = -1, reached = 0;
        while (reached < size)
        {
            var entry = await NextAsync(cancellationToken) ?? throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
            var number = ChunkNumber(prefix, entry.Name);
            if (number <= last)
            {
                throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: chunk {entry.Name} comes after chunk {last} of {prefix}");
            }

            var data = await ReadAllAsync(entry, cancellationToken);
            var offset = reached + ((number - last - 1) * XvaFormat.ChunkSize);
            if (data.Length > XvaFormat.ChunkSize || offset + data.Length > size)
            {
                throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: chunk {entry.Name} goes past the disk's end ({size} bytes)");
            }

            await VerifyAsync(entry.Name, data, force, cancellationToken);
            target.Position = offset;
            await target.WriteAsync(data, cancellationToken);
            last = number;
            reached = offset + data.Length;
            progress?.Invoke(reached);
        }
    }

    private async Task VerifyAsync(string chunkName, byte[] data, bool force, CancellationToken cancellationToken)
    {
        var entry = await NextAsync(cancellationToken) ?? throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
        var extension = entry.Name.StartsWith(chunkName, StringComparison.Ordinal) ? entry.Name[chunkName.Length..] : "";
        var computed = XvaFormat.Checksum(extension, data)
            ?? throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Expected to find a supported inline checksum file for {chunkName}, instead found a file called: {entry.Name}");
        var recorded = Encoding.ASCII.GetString(await ReadAllAsync(entry, cancellationToken)).Trim();
        if (!string.Equals(recorded, computed, StringComparison.OrdinalIgnoreCase) && !force)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Block {chunkName} checksum failed: original = {recorded}; recomputed = {computed}");
        }
    }

    private static long ChunkNumber(string prefix, string name)
    {
        if (!name.StartsWith(prefix + "/", StringComparison.Ordinal)
            || !long.TryParse(name.AsSpan(prefix.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: expected a chunk of {prefix}, got {name}");
        }

        return number;
    }

    /// <summary>The next member; a truncated archive is IMPORT_ERROR_PREMATURE_EOF, a damaged one IMPORT_ERROR_GENERIC.</summary>
    private async Task<TarEntry?> NextAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _tar.GetNextEntryAsync(copyData: false, cancellationToken);
        }
        catch (EndOfStreamException)
        {
            throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
        }
        catch (InvalidDataException ex)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: {ex.Message}");
        }
        catch (FormatException ex)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: {ex.Message}");
        }
    }

    private static async Task<byte[]> ReadAllAsync(TarEntry entry, CancellationToken cancellationToken)
    {
        if (entry.DataStream is null || entry.Length == 0)
        {
            return [];
        }

        if (entry.Length > XvaFormat.ChunkSize * 64L)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: member {entry.Name} is {entry.Length} bytes");
        }

        var data = new byte[entry.Length];
        try
        {
            await entry.DataStream.ReadExactlyAsync(data, cancellationToken);
        }
        catch (EndOfStreamException)
        {
            throw new XenApiException(ErrorCodes.ImportErrorPrematureEof);
        }
        catch (InvalidDataException ex)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"Invalid XVA file: {ex.Message}");
        }

        return data;
    }

    public async ValueTask DisposeAsync()
    {
        await _tar.DisposeAsync();
        if (Compression != XvaCompression.None)
        {
            await _decompressed.DisposeAsync();
        }
    }

    /// <summary>The bytes read to tell the compression, then the rest of the input: a read-only forward stream.</summary>
    private sealed class ReplayStream(ReadOnlyMemory<byte> start, Stream rest) : Stream
    {
        private ReadOnlyMemory<byte> _start = start;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_start.IsEmpty)
            {
                return rest.Read(buffer);
            }

            var n = Math.Min(buffer.Length, _start.Length);
            _start.Span[..n].CopyTo(buffer);
            _start = _start[n..];
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_start.IsEmpty)
            {
                return await rest.ReadAsync(buffer, cancellationToken);
            }

            var n = Math.Min(buffer.Length, _start.Length);
            _start.Span[..n].CopyTo(buffer.Span);
            _start = _start[n..];
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
