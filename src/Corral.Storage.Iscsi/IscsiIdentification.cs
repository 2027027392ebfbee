using Corral.Platform;

namespace Corral.Storage.Iscsi;

/// <summary>
/// A LUN's device identification page (VPD 0x83) read through libiscsi in a session of its own, CHAP credentials
/// given to libiscsi directly, on a thread of its own with SIGCHLD blocked (libiscsi's synchronous calls block it until
/// the target answers, and fail with "Poll failed" when a signal interrupts their wait: <see cref="NativeBlockingCall"/>).
/// </summary>
internal static class IscsiIdentification
{
    /// <summary>The initiator name libiscsi's iscsi-inq gives itself, for a location that names none (the host's IQN).</summary>
    private const string InitiatorName = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq";

    private const int TimeoutSeconds = 30;

    public static Task<IReadOnlyList<ScsiDesignator>> ReadAsync(IscsiLocation target, int lun, CancellationToken cancellationToken) =>
        NativeBlockingCall.Run(() => Read(target, lun), cancellationToken);

    private static IReadOnlyList<ScsiDesignator> Read(IscsiLocation target, int lun)
    {
        var iscsi = LibIscsi.CreateContext(target.Initiator ?? InitiatorName);
        if (iscsi == IntPtr.Zero)
        {
            throw SrBackend.Failure(83, "ISCSI discovery failed", "libiscsi could not make a context");
        }

        try
        {
            // Each setting answers 0, or -1 with the reason in the context's error, which the connection then reports.
            var set = LibIscsi.SetTargetName(iscsi, target.TargetIqn) | LibIscsi.SetSessionType(iscsi, LibIscsi.SessionNormal)
                      | LibIscsi.SetHeaderDigest(iscsi, LibIscsi.HeaderDigestNoneCrc32c) | LibIscsi.SetTimeout(iscsi, TimeoutSeconds)
                      | (target.ChapUser is { } user ? LibIscsi.SetUsernamePassword(iscsi, user, target.ChapPassword ?? "") : 0);
            if (set != 0 || LibIscsi.FullConnect(iscsi, target.Portal, lun) != 0)
            {
                throw IscsiTarget.SessionFailure(LibIscsi.Error(iscsi));
            }

            try
            {
                return Identification(iscsi, lun);
            }
            finally
            {
                _ = LibIscsi.Logout(iscsi); // a session ending either way: nothing to do on a failure
            }
        }
        finally
        {
            _ = LibIscsi.DestroyContext(iscsi);
        }
    }

    private static IReadOnlyList<ScsiDesignator> Identification(IntPtr iscsi, int lun)
    {
        var task = LibIscsi.Inquiry(iscsi, lun, evpd: 1, pageCode: 0x83, maxSize: 4096);
        if (task == IntPtr.Zero)
        {
            throw SrBackend.Failure(83, "ISCSI discovery failed", $"INQUIRY of LUN {lun}'s device identification failed: {LibIscsi.Error(iscsi)}");
        }

        try
        {
            var page = LibIscsi.Status(task) == 0 ? LibIscsi.Unmarshall(task) : IntPtr.Zero;
            return page == IntPtr.Zero ? [] : ScsiDesignator.ReadAll(page);
        }
        finally
        {
            LibIscsi.FreeTask(task);
        }
    }
}
