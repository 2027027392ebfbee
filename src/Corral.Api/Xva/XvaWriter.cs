using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace Corral.Api.Xva;

/// <summary>
/// Writes an XVA as xapi's export does: <c>ova.xml</c> first, then each disk's chunks, each followed by its
/// <c>.xxhash</c> member; chunks of zeros are left out, except the first and the last, which xapi always writes (its
/// import reads a disk until it has seen the chunk that reaches the disk's end). Compressed as asked (gzip or zstd).
/// </summary>
public sealed class XvaWriter : IAsyncDisposable
{
    private readonly Stream _compressed;
    private readonly TarWriter _tar;
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    public XvaWriter(Stream output, XvaCompression compression)
    {
        ArgumentNullException.ThrowIfNull(output);
        _compressed = compression switch
        {
            XvaCompression.Gzip => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true),
            XvaCompression.Zstd => new ZstdSharp.CompressionStream(output, leaveOpen: true),
            _ => output,
        };
        _tar = new TarWriter(_compressed, TarEntryFormat.Ustar, leaveOpen: true);
        Compression = compression;
    }

    public XvaCompression Compression { get; }

    public Task WriteHeaderAsync(XvaHeader header, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        return WriteMemberAsync(XvaFormat.OvaXml, Encoding.UTF8.GetBytes(header.ToXml()), cancellationToken);
    }

    /// <summary>
    /// Streams <paramref name="size"/> bytes of a raw disk image from <paramref name="raw"/> as the chunks of
    /// <paramref name="prefix"/>; <paramref name="progress"/> hears the bytes read so far.
    /// </summary>
    public async Task WriteDiskAsync(string prefix, Stream raw, long size, CancellationToken cancellationToken, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var buffer = new byte[XvaFormat.ChunkSize];
        var lastChunk = size == 0 ? 0 : (size - 1) / XvaFormat.ChunkSize;
        for (long number = 0, offset = 0; offset < size; number++, offset += XvaFormat.ChunkSize)
        {
            var length = (int)Math.Min(XvaFormat.ChunkSize, size - offset);
            await raw.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
            var chunk = buffer.AsMemory(0, length);
            if (number == 0 || number == lastChunk || chunk.Span.IndexOfAnyExcept((byte)0) >= 0)
            {
                var name = XvaFormat.ChunkName(prefix, number);
                await WriteMemberAsync(name, chunk, cancellationToken);
                await WriteMemberAsync(name + XvaFormat.XxHashExtension, Encoding.ASCII.GetBytes(XvaFormat.XxHash(chunk.Span)), cancellationToken);
            }

            progress?.Invoke(offset + length);
        }
    }

    private async Task WriteMemberAsync(string name, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        using var stream = new MemoryStream(data.ToArray(), writable: false);
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = stream,
            ModificationTime = _now,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        };
        await _tar.WriteEntryAsync(entry, cancellationToken);
    }

    /// <summary>Ends the archive (tar's two zero blocks) and the compression; the output stays open.</summary>
    public async ValueTask DisposeAsync()
    {
        await _tar.DisposeAsync();
        if (Compression != XvaCompression.None)
        {
            await _compressed.DisposeAsync();
        }
    }
}
