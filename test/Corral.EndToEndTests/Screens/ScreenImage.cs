using System.Globalization;
using System.Text;

namespace Corral.EndToEndTests.Screens;

/// <summary>A screen's picture, one 0xRRGGBB value a pixel, row by row.</summary>
public sealed record ScreenImage(int Width, int Height, uint[] Pixels)
{
    /// <summary>
    /// Reads the binary PPM (P6, 8 bits a channel) that QEMU's <c>screendump</c> writes: its header is the magic, the
    /// width, the height and the largest value, separated by white space (comments allowed), then RGB triplets.
    /// </summary>
    public static ScreenImage FromPpm(byte[] ppm)
    {
        var position = 0;
        string Token()
        {
            while (position < ppm.Length && (char.IsWhiteSpace((char)ppm[position]) || ppm[position] == '#'))
            {
                if (ppm[position] == '#')
                {
                    while (position < ppm.Length && ppm[position] != '\n')
                    {
                        position++;
                    }
                }
                else
                {
                    position++;
                }
            }

            var start = position;
            while (position < ppm.Length && !char.IsWhiteSpace((char)ppm[position]))
            {
                position++;
            }

            return Encoding.ASCII.GetString(ppm, start, position - start);
        }

        if (Token() != "P6")
        {
            throw new InvalidDataException("not a binary PPM (P6) image");
        }

        var width = int.Parse(Token(), CultureInfo.InvariantCulture);
        var height = int.Parse(Token(), CultureInfo.InvariantCulture);
        if (Token() != "255")
        {
            throw new InvalidDataException("not an 8-bit PPM image");
        }

        position++; // the one white space character before the pixels
        if (ppm.Length - position < width * height * 3)
        {
            throw new InvalidDataException($"a {width}x{height} PPM image with {ppm.Length - position} bytes of pixels");
        }

        var pixels = new uint[width * height];
        for (var i = 0; i < pixels.Length; i++, position += 3)
        {
            pixels[i] = ((uint)ppm[position] << 16) | ((uint)ppm[position + 1] << 8) | ppm[position + 2];
        }

        return new ScreenImage(width, height, pixels);
    }

    /// <summary>The share of pixels that differ from <paramref name="other"/>'s (1 when the sizes differ).</summary>
    public double DifferenceFrom(ScreenImage other)
    {
        if (other.Width != Width || other.Height != Height)
        {
            return 1;
        }

        var differing = 0;
        for (var i = 0; i < Pixels.Length; i++)
        {
            if (Pixels[i] != other.Pixels[i])
            {
                differing++;
            }
        }

        return Pixels.Length == 0 ? 1 : (double)differing / Pixels.Length;
    }

    /// <summary>The share of pixels not of the most common colour (the background): 0 for a blank screen.</summary>
    public double Drawn()
    {
        if (Pixels.Length == 0)
        {
            return 0;
        }

        var background = Pixels.GroupBy(p => p).Max(g => g.Count());
        return 1 - ((double)background / Pixels.Length);
    }

    public override string ToString() => $"{Width}x{Height}, {Drawn():P2} drawn";
}
