using System.Formats.Asn1;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// A certificate's subject as QEMU names a TLS peer: the distinguished name GnuTLS gives (<c>gnutls_x509_crt_get_dn</c>,
/// RFC 4514: the most specific name first, short attribute names, special characters escaped with a backslash). QEMU's
/// <c>authz-simple</c> compares that string with its <c>identity</c> as it is, so the destination of a migration must
/// be told the source's name in exactly this spelling: a pool host's certificate, issued by the pool's CA, reads
/// <c>CN=&lt;member name&gt;</c>.
/// </summary>
public static class QemuTlsIdentity
{
    // GnuTLS's short names for the attributes a pool's certificates (and most others) carry.
    private static readonly Dictionary<string, string> ShortNames = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN",
        ["2.5.4.6"] = "C",
        ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST",
        ["2.5.4.9"] = "STREET",
        ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU",
        ["2.5.4.5"] = "serialNumber",
        ["0.9.2342.19200300.100.1.25"] = "DC",
        ["0.9.2342.19200300.100.1.1"] = "UID",
        ["1.2.840.113549.1.9.1"] = "EMAIL",
    };

    /// <summary>The subject of <paramref name="certificate"/> as QEMU's authz sees it.</summary>
    public static string Of(X509Certificate2 certificate) => Format(certificate.SubjectName);

    /// <summary>The subject of the PEM certificate in <paramref name="file"/>.</summary>
    public static string OfFile(string file)
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(file));
        return Of(certificate);
    }

    /// <summary><paramref name="name"/> in RFC 4514's string form, as GnuTLS writes it.</summary>
    public static string Format(X500DistinguishedName name)
    {
        var rdns = new List<string>();
        var reader = new AsnReader(name.RawData, AsnEncodingRules.DER);
        var sequence = reader.ReadSequence();
        while (sequence.HasData)
        {
            var set = sequence.ReadSetOf();
            var attributes = new List<string>();
            while (set.HasData)
            {
                var attribute = set.ReadSequence();
                var oid = attribute.ReadObjectIdentifier();
                var value = attribute.ReadEncodedValue();
                attributes.Add(ShortNames.TryGetValue(oid, out var shortName)
                    ? $"{shortName}={Escape(Text(value))}"
                    : $"{oid}=#{Convert.ToHexStringLower(value.Span)}");
            }

            // A multi-valued name's attributes stay in their (DER-sorted) order, as GnuTLS lists them.
            rdns.Add(string.Join('+', attributes));
        }

        rdns.Reverse();
        return string.Join(',', rdns);
    }

    /// <summary>A directory string's text (UTF-8, printable, IA5, T.61 or BMP string).</summary>
    private static string Text(ReadOnlyMemory<byte> encoded)
    {
        var value = new AsnReader(encoded, AsnEncodingRules.BER);
        var tag = value.PeekTag();
        return tag.TagValue switch
        {
            (int)UniversalTagNumber.UTF8String => value.ReadCharacterString(UniversalTagNumber.UTF8String),
            (int)UniversalTagNumber.PrintableString => value.ReadCharacterString(UniversalTagNumber.PrintableString),
            (int)UniversalTagNumber.IA5String => value.ReadCharacterString(UniversalTagNumber.IA5String),
            (int)UniversalTagNumber.BMPString => value.ReadCharacterString(UniversalTagNumber.BMPString),
            (int)UniversalTagNumber.T61String => value.ReadCharacterString(UniversalTagNumber.T61String),
            _ => throw new FormatException($"an attribute value of ASN.1 tag {tag.TagValue.ToString(CultureInfo.InvariantCulture)} is not a directory string"),
        };
    }

    /// <summary>RFC 4514's escapes: the special characters, a leading '#' or space and a trailing space.</summary>
    public static string Escape(string value)
    {
        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            var special = c is ',' or '+' or '"' or '\\' or '<' or '>' or ';'
                          || (i == 0 && c is '#' or ' ')
                          || (i == value.Length - 1 && c == ' ');
            if (special)
            {
                text.Append('\\');
            }

            text.Append(c);
        }

        return text.ToString();
    }
}
