namespace Corral.Model;

/// <summary>
/// The version a Corral host reports, as a current XenServer 8 / XCP-ng 8.3 host does, so that clients (XenCenter,
/// Xen Orchestra, the SDKs) take their modern paths. Corral's own version travels beside them.
/// </summary>
public static class XenServerVersion
{
    public const long ApiVersionMajor = 2;
    public const long ApiVersionMinor = 21;
    public const string ApiVersionVendor = "XenSource";
}
