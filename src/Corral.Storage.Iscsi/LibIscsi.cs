using System.Runtime.InteropServices;

namespace Corral.Storage.Iscsi;

/// <summary>
/// The few synchronous calls of libiscsi (libiscsi.so.7, Debian's libiscsi7) that read a LUN's device identification
/// page as bytes, which libiscsi's iscsi-inq prints only as text (a binary NAA designator comes out cut at its first
/// zero byte). Every call blocks the calling thread until the target answers.
/// </summary>
internal static partial class LibIscsi
{
    private const string Library = "libiscsi.so.7";

    public const int SessionNormal = 2;
    public const int HeaderDigestNoneCrc32c = 1;

    [LibraryImport(Library, EntryPoint = "iscsi_create_context", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr CreateContext(string initiatorName);

    [LibraryImport(Library, EntryPoint = "iscsi_destroy_context")]
    public static partial int DestroyContext(IntPtr iscsi);

    [LibraryImport(Library, EntryPoint = "iscsi_get_error")]
    public static partial IntPtr GetError(IntPtr iscsi);

    [LibraryImport(Library, EntryPoint = "iscsi_set_targetname", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetTargetName(IntPtr iscsi, string targetName);

    [LibraryImport(Library, EntryPoint = "iscsi_set_session_type")]
    public static partial int SetSessionType(IntPtr iscsi, int sessionType);

    [LibraryImport(Library, EntryPoint = "iscsi_set_header_digest")]
    public static partial int SetHeaderDigest(IntPtr iscsi, int headerDigest);

    [LibraryImport(Library, EntryPoint = "iscsi_set_initiator_username_pwd", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetUsernamePassword(IntPtr iscsi, string user, string password);

    [LibraryImport(Library, EntryPoint = "iscsi_set_timeout")]
    public static partial int SetTimeout(IntPtr iscsi, int seconds);

    [LibraryImport(Library, EntryPoint = "iscsi_full_connect_sync", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FullConnect(IntPtr iscsi, string portal, int lun);

    [LibraryImport(Library, EntryPoint = "iscsi_logout_sync")]
    public static partial int Logout(IntPtr iscsi);

    [LibraryImport(Library, EntryPoint = "iscsi_inquiry_sync")]
    public static partial IntPtr Inquiry(IntPtr iscsi, int lun, int evpd, int pageCode, int maxSize);

    [LibraryImport(Library, EntryPoint = "scsi_datain_unmarshall")]
    public static partial IntPtr Unmarshall(IntPtr task);

    [LibraryImport(Library, EntryPoint = "scsi_free_scsi_task")]
    public static partial void FreeTask(IntPtr task);

    /// <summary>The SCSI status of a task: its first field (<c>struct scsi_task.status</c>); 0 is GOOD.</summary>
    public static int Status(IntPtr task) => Marshal.ReadInt32(task);

    public static string Error(IntPtr iscsi) => Marshal.PtrToStringUTF8(GetError(iscsi)) ?? "";
}
