namespace Corral.PoolDatabase;

/// <summary>The pool database's key layout, in one place.</summary>
public static class PoolKeys
{
    public const string Root = "/corral/";
    public const string Objects = Root + "objects/";
    public const string UuidIndex = Root + "uuid/";
    public const string RefIndex = Root + "ref/";

    /// <summary>Leased: exists while the host's agent is alive. Keyed by the host_metrics reference, value the host reference.</summary>
    public const string Live = Root + "live/";

    /// <summary>
    /// Derived: each object's <c>allowed_operations</c>, one key per object (<c>allowed/&lt;class&gt;/&lt;ref&gt;</c>), kept
    /// apart from the object so that the master's computation never races the object's writers (see <see cref="DerivedFields"/>).
    /// </summary>
    public const string Allowed = Root + "allowed/";

    /// <summary>Leased: the host running a VM's QEMU process. At most one per VM.</summary>
    public const string VmOwner = Root + "vm-owner/";

    public const string Auth = Root + "auth/";

    /// <summary>HA's recovery of a failed host, one key per host, resumed by any new master.</summary>
    public const string HaRecoveries = Root + "ha/recoveries/";
    public const string Operations = Root + "ops/";

    /// <summary>The PEM of each host's server certificate, by its <c>Certificate</c> record (public data).</summary>
    public const string CertificatePems = Root + "certificate-pem/";

    /// <summary>
    /// Each VTPM's contents: the <c>secret</c> object holding them, by VTPM reference (xapi's internal field
    /// <c>VTPM.contents</c>, which the published datamodel leaves out).
    /// </summary>
    public const string VtpmContents = Root + "vtpm-contents/";

    public static string VtpmContentsKey(string vtpmRef) => VtpmContents + vtpmRef;

    public static string Object(string className, string reference) => $"{Objects}{className}/{reference}";

    public static string ClassPrefix(string className) => $"{Objects}{className}/";

    public static string Uuid(string uuid) => UuidIndex + uuid;

    public static string RefClass(string reference) => RefIndex + reference;

    public static string LiveKey(string hostMetricsRef) => Live + hostMetricsRef;

    public static string AllowedKey(string className, string reference) => $"{Allowed}{className}/{reference}";

    public static string AllowedClassPrefix(string className) => $"{Allowed}{className}/";

    public static string VmOwnerKey(string vmRef) => VmOwner + vmRef;

    public static string CertificatePem(string certificateRef) => CertificatePems + certificateRef;
}
