using System.Buffers.Binary;
using System.Text;

namespace Corral.EndToEndTests.Screens;

/// <summary>
/// A small RFB (VNC, RFC 6143) viewer for tests: over any byte stream (QEMU's VNC socket, or the web console's websocket
/// as noVNC uses it), it does the 3.8 handshake with no authentication (what QEMU offers Corral's console, which the
/// web console guards with the session), asks for 32-bit true colour and raw rectangles, and reads the whole screen on
/// request. Only what a test needs: no input, no compression.
/// </summary>
public sealed class RfbClient : IAsyncDisposable
{
    private const int EncodingRaw = 0;
    private const int EncodingDesktopSize = -223;
    private readonly Stream _stream;
    private uint[] _pixels = [];

    private RfbClient(Stream stream) => _stream = stream;

    public int Width { get; private set; }

    public int Height { get; private set; }

    /// <summary>The desktop name the server gave (QEMU: the VM's <c>-name</c>).</summary>
    public string Name { get; private set; } = "";

    /// <summary>Does the handshake on <paramref name="stream"/> (the client owns it from then on).</summary>
    public static async Task<RfbClient> ConnectAsync(Stream stream, CancellationToken cancellationToken)
    {
        var client = new RfbClient(stream);
        try
        {
            await client.HandshakeAsync(cancellationToken);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>The whole screen as it is now: a full (non-incremental) update, read until it has come.</summary>
    public async Task<ScreenImage> ReadScreenAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await RequestUpdateAsync(cancellationToken);
            if (await ReadUpdateAsync(cancellationToken))
            {
                return new ScreenImage(Width, Height, (uint[])_pixels.Clone());
            }

            // The screen changed size (a mode switch): what came is the new size only; ask again for its contents.
        }
    }

    private async Task HandshakeAsync(CancellationToken ct)
    {
        var version = Encoding.ASCII.GetString(await ReadExactlyAsync(12, ct));
        if (!version.StartsWith("RFB 003.", StringComparison.Ordinal) || string.CompareOrdinal(version, "RFB 003.008\n") < 0)
        {
            throw new InvalidDataException($"not an RFB 3.8 server: '{version.TrimEnd()}'");
        }

        await WriteAsync(Encoding.ASCII.GetBytes("RFB 003.008\n"), ct);
        var types = await ReadExactlyAsync((await ReadExactlyAsync(1, ct))[0], ct);
        if (types.Length == 0)
        {
            throw new InvalidDataException("the server refused the connection: " + await ReadReasonAsync(ct));
        }

        if (!types.Contains((byte)1))
        {
            throw new InvalidDataException($"the server wants authentication (security types {string.Join(',', types)})");
        }

        await WriteAsync([1], ct);
        if (BinaryPrimitives.ReadUInt32BigEndian(await ReadExactlyAsync(4, ct)) != 0)
        {
            throw new InvalidDataException("the server refused the connection: " + await ReadReasonAsync(ct));
        }

        await WriteAsync([1], ct); // ClientInit: shared, as a second viewer beside a browser
        var init = await ReadExactlyAsync(24, ct);
        Resize(BinaryPrimitives.ReadUInt16BigEndian(init), BinaryPrimitives.ReadUInt16BigEndian(init.AsSpan(2)));
        Name = Encoding.UTF8.GetString(await ReadExactlyAsync((int)BinaryPrimitives.ReadUInt32BigEndian(init.AsSpan(20)), ct));

        // SetPixelFormat: 32 bits a pixel, depth 24, little-endian, true colour, 8 bits each of red (16), green (8), blue (0).
        byte[] format = [0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0];
        await WriteAsync(format, ct);
        var encodings = new byte[4 + 8];
        encodings[0] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(encodings.AsSpan(2), 2);
        BinaryPrimitives.WriteInt32BigEndian(encodings.AsSpan(4), EncodingRaw);
        BinaryPrimitives.WriteInt32BigEndian(encodings.AsSpan(8), EncodingDesktopSize);
        await WriteAsync(encodings, ct);
    }

    private async Task RequestUpdateAsync(CancellationToken ct)
    {
        var request = new byte[10];
        request[0] = 3; // FramebufferUpdateRequest, not incremental: the whole screen
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), (ushort)Width);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(8), (ushort)Height);
        await WriteAsync(request, ct);
    }

    /// <summary>Reads server messages until a framebuffer update; false when it only resized the screen.</summary>
    private async Task<bool> ReadUpdateAsync(CancellationToken ct)
    {
        while (true)
        {
            var type = (await ReadExactlyAsync(1, ct))[0];
            switch (type)
            {
                case 0:
                    return await ReadRectanglesAsync(ct);
                case 1: // SetColourMapEntries (not used in true colour, skipped)
                    var map = await ReadExactlyAsync(5, ct);
                    await ReadExactlyAsync(6 * BinaryPrimitives.ReadUInt16BigEndian(map.AsSpan(3)), ct);
                    break;
                case 2: // Bell
                    break;
                case 3: // ServerCutText
                    var cut = await ReadExactlyAsync(7, ct);
                    await ReadExactlyAsync((int)BinaryPrimitives.ReadUInt32BigEndian(cut.AsSpan(3)), ct);
                    break;
                default:
                    throw new InvalidDataException($"unexpected RFB server message type {type}");
            }
        }
    }

    private async Task<bool> ReadRectanglesAsync(CancellationToken ct)
    {
        var header = await ReadExactlyAsync(3, ct);
        var count = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(1));
        var resized = false;
        for (var i = 0; i < count; i++)
        {
            var r = await ReadExactlyAsync(12, ct);
            int x = BinaryPrimitives.ReadUInt16BigEndian(r), y = BinaryPrimitives.ReadUInt16BigEndian(r.AsSpan(2));
            int w = BinaryPrimitives.ReadUInt16BigEndian(r.AsSpan(4)), h = BinaryPrimitives.ReadUInt16BigEndian(r.AsSpan(6));
            var encoding = BinaryPrimitives.ReadInt32BigEndian(r.AsSpan(8));
            if (encoding == EncodingDesktopSize)
            {
                Resize(w, h);
                resized = true;
                continue;
            }

            if (encoding != EncodingRaw || x + w > Width || y + h > Height)
            {
                throw new InvalidDataException($"unexpected rectangle {w}x{h}+{x}+{y} in encoding {encoding} on a {Width}x{Height} screen");
            }

            var raw = await ReadExactlyAsync(w * h * 4, ct);
            for (var row = 0; row < h; row++)
            {
                for (var col = 0; col < w; col++)
                {
                    _pixels[((y + row) * Width) + x + col] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(((row * w) + col) * 4)) & 0xFFFFFF;
                }
            }
        }

        return !resized;
    }

    private void Resize(int width, int height)
    {
        Width = width;
        Height = height;
        _pixels = new uint[width * height];
    }

    private async Task<string> ReadReasonAsync(CancellationToken ct) =>
        Encoding.UTF8.GetString(await ReadExactlyAsync((int)BinaryPrimitives.ReadUInt32BigEndian(await ReadExactlyAsync(4, ct)), ct));

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken ct)
    {
        var buffer = new byte[count];
        await _stream.ReadExactlyAsync(buffer, ct);
        return buffer;
    }

    private async Task WriteAsync(byte[] bytes, CancellationToken ct)
    {
        await _stream.WriteAsync(bytes, ct);
        await _stream.FlushAsync(ct);
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
