using System.Globalization;
using System.Security;
using System.Text;
using Corral.Model;

namespace Corral.Storage;

/// <summary>An SR a probe found at the location it was given.</summary>
/// <param name="TotalSpace">Bytes of the storage the SR is on.</param>
/// <param name="FreeSpace">Bytes free there.</param>
public sealed record ProbedSr(string Uuid, string NameLabel, string NameDescription, long TotalSpace, long FreeSpace);

/// <summary>SR.probe's answer: the XML document xapi returns for the SRs a probe found.</summary>
public static class SrProbeXml
{
    /// <summary>
    /// <c>&lt;SRlist&gt;</c> with one <c>&lt;SR&gt;</c> per SR (size, name_label, name_description, UUID), after an XML
    /// declaration and without indentation, as xapi writes it for drivers that report structured probe results.
    /// </summary>
    public static string Format(IEnumerable<ProbedSr> srs)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SRlist>");
        foreach (var sr in srs)
        {
            xml.Append("<SR>")
                .Append(Element("size", sr.TotalSpace.ToString(CultureInfo.InvariantCulture)))
                .Append(Element("name_label", sr.NameLabel))
                .Append(Element("name_description", sr.NameDescription))
                .Append(Element("UUID", sr.Uuid))
                .Append("</SR>");
        }

        return xml.Append("</SRlist>\n").ToString();
    }

    private static string Element(string name, string text) => $"<{name}>{SecurityElement.Escape(text)}</{name}>";
}

/// <summary>Storage failures as xapi reports a storage driver's: <c>SR_BACKEND_FAILURE_&lt;code&gt;</c> ["", description, detail].</summary>
public static class SrBackend
{
    /// <summary>The request is missing the location parameter (the driver's code 94).</summary>
    public static XenApiException LocationMissing() => Failure(94, "The request is missing the location parameter");

    /// <summary>The SR already exists (code 42).</summary>
    public static XenApiException AlreadyExists(string detail) => Failure(42, "The SR already exists", detail);

    /// <summary>The SR is not available (code 47).</summary>
    public static XenApiException Unavailable(string detail) => Failure(47, "The SR is not available", detail);

    public static XenApiException Failure(int code, string description, string detail = "") =>
        new($"{ErrorCodes.SrBackendFailure}_{code.ToString(CultureInfo.InvariantCulture)}", "", detail.Length == 0 ? description : $"{description} [opterr={detail}]", "");

    /// <summary>What xapi answers when the SR type's driver has no probe (an ISO library's has none).</summary>
    public static XenApiException ProbeNotSupported() =>
        new(ErrorCodes.SrBackendFailure, "Operation 'sr_probe' not supported by this SR type", "", "");
}
