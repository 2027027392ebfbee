using Microsoft.Extensions.Logging;

namespace Corral.Api.Xva;

/// <summary>Log event ids of VM export and import.</summary>
public static class XvaEvents
{
    public static readonly EventId DiskExporting = new(9101, nameof(DiskExporting));
    public static readonly EventId Exported = new(9102, nameof(Exported));
    public static readonly EventId ExportFailed = new(9103, nameof(ExportFailed));
    public static readonly EventId Imported = new(9104, nameof(Imported));
    public static readonly EventId ImportFailed = new(9105, nameof(ImportFailed));
    public static readonly EventId NetworkMatched = new(9106, nameof(NetworkMatched));
    public static readonly EventId Redirected = new(9107, nameof(Redirected));
    public static readonly EventId CleanupFailed = new(9108, nameof(CleanupFailed));
}

/// <summary>The keys of xapi's VTPM record in an export (importexport.ml's <c>vtpm'</c>, marshalled by field name).</summary>
public static class XvaVtpm
{
    public const string VmKey = "vTPM'_VM";
    public const string UuidKey = "vTPM'_uuid";
    public const string IsUniqueKey = "vTPM'_is_unique";
    public const string IsProtectedKey = "vTPM'_is_protected";
    public const string ContentKey = "vTPM'_content";
}
