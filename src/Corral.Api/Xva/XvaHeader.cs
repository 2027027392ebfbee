using System.Globalization;
using System.Text;
using System.Xml;
using Corral.Api.Protocol;
using Corral.Model;

namespace Corral.Api.Xva;

/// <summary>One exported object: its class (xapi's class name), its id in the archive (<c>Ref:N</c>), its record.</summary>
public sealed record XvaObject(string Class, string Id, Dictionary<string, object?> Snapshot);

/// <summary>The <c>version</c> struct of <c>ova.xml</c> (importexport.ml's names).</summary>
public sealed record XvaVersion(string Hostname, string Date, string ProductVersion, string ProductBrand, string BuildNumber,
    long XapiMajor, long XapiMinor, long ExportVsn)
{
    /// <summary>This Corral's version as an export states it: the xapi version its hosts report (software_version:xapi).</summary>
    public static XvaVersion Current(string hostname) => new(hostname, DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        XenServerVersion.ProductVersion, XenServerVersion.ProductBrand, "corral", XapiPart(0), XapiPart(1), XvaFormat.ExportVersion);

    /// <summary>
    /// xapi's <c>assert_compatible</c>: an archive written by a newer xapi (major, then minor) is refused,
    /// IMPORT_INCOMPATIBLE_VERSION.
    /// </summary>
    public void AssertImportable()
    {
        long major = XapiPart(0), minor = XapiPart(1);
        if (major < XapiMajor || (major == XapiMajor && minor < XapiMinor))
        {
            throw new XenApiException(ErrorCodes.ImportIncompatibleVersion);
        }
    }

    private static long XapiPart(int index) => long.Parse(XenServerVersion.XapiVersion.Split('.')[index], CultureInfo.InvariantCulture);
}

/// <summary>
/// <c>ova.xml</c>: a bare XML-RPC value, a struct of <c>version</c> and <c>objects</c> (an array of
/// <c>{class, id, snapshot}</c>), written and read as xapi's <c>header</c> type is.
/// </summary>
public sealed record XvaHeader(XvaVersion Version, IReadOnlyList<XvaObject> Objects)
{
    public string ToXml()
    {
        var version = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["hostname"] = Version.Hostname,
            ["date"] = Version.Date,
            ["product_version"] = Version.ProductVersion,
            ["product_brand"] = Version.ProductBrand,
            ["build_number"] = Version.BuildNumber,
            ["xapi_major"] = Version.XapiMajor,
            ["xapi_minor"] = Version.XapiMinor,
            ["export_vsn"] = Version.ExportVsn,
        };
        var objects = Objects.Select(o => (object?)new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["class"] = o.Class,
            ["id"] = o.Id,
            ["snapshot"] = o.Snapshot,
        }).ToList();
        var header = new Dictionary<string, object?>(StringComparer.Ordinal) { ["version"] = version, ["objects"] = objects };
        var text = new StringBuilder();
        using (var w = XmlWriter.Create(text, new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, ConformanceLevel = ConformanceLevel.Fragment }))
        {
            XmlRpcCodec.WriteValue(w, header);
        }

        return text.ToString();
    }

    /// <summary>Reads <c>ova.xml</c>; anything malformed is IMPORT_ERROR_GENERIC with what was wrong.</summary>
    public static XvaHeader Parse(string xml)
    {
        object? value;
        try
        {
            value = XmlRpcCodec.ParseValue(xml, XvaFormat.MaxNesting);
        }
        catch (XenApiException ex)
        {
            throw Malformed($"ova.xml is not an XML-RPC value: {string.Join(' ', ex.ErrorDescription)}");
        }

        if (value is not IDictionary<string, object?> header)
        {
            throw Malformed("ova.xml is not a struct");
        }

        if (!header.TryGetValue("version", out var v) || v is not IDictionary<string, object?> version)
        {
            throw Malformed("Failed to find key 'version' in ova.xml");
        }

        if (!header.TryGetValue("objects", out var o) || o is not IEnumerable<object?> objects)
        {
            throw Malformed("Failed to find key 'objects' in ova.xml");
        }

        return new XvaHeader(ReadVersion(version), objects.Select(ReadObject).ToList());
    }

    private static XvaVersion ReadVersion(IDictionary<string, object?> v)
    {
        string Text(string key) => v.TryGetValue(key, out var x) && x is not null and not IDictionary<string, object?>
            ? Convert.ToString(x, CultureInfo.InvariantCulture) ?? ""
            : throw Malformed($"Failed to find key '{key}' in version data");
        long Number(string key) => long.TryParse(Text(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            ? n : throw Malformed($"version data: '{key}' is not an integer");
        return new XvaVersion(Text("hostname"), Text("date"), Text("product_version"), Text("product_brand"), Text("build_number"),
            Number("xapi_major"), Number("xapi_minor"), v.ContainsKey("export_vsn") ? Number("export_vsn") : 0);
    }

    private static XvaObject ReadObject(object? value)
    {
        if (value is not IDictionary<string, object?> obj
            || !obj.TryGetValue("class", out var cls) || cls is not string className
            || !obj.TryGetValue("id", out var id) || id is not string objectId
            || !obj.TryGetValue("snapshot", out var snapshot) || snapshot is not IDictionary<string, object?> record)
        {
            throw Malformed("an object of ova.xml lacks its class, id or snapshot");
        }

        return new XvaObject(className, objectId, new Dictionary<string, object?>(record, StringComparer.Ordinal));
    }

    private static XenApiException Malformed(string message) => new(ErrorCodes.ImportErrorGeneric, message);
}
