using Corral.Platform;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging;

namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>
/// A pool whose database lost its quorum starts again from this member's own copy, as etcd's disaster recovery guide
/// has it: a snapshot of the member (<c>etcdctl snapshot save</c>, which a member without quorum still serves: it is
/// everything it applied), or when it does not run, its database file (<c>member/snap/db</c>, which lacks what it
/// applied in its last 100 ms, etcd's commit interval), restored with <c>etcdctl snapshot restore</c> into a
/// one-member cluster of its own, which the other hosts then join afresh and copy whole from its leader.
/// </summary>
/// <remarks>
/// Not <c>etcd --force-new-cluster</c>: that keeps the old cluster's raft log, which members that join replay onto an
/// empty database, and etcd has a known case of them then holding other data than the member they copied
/// (etcd-io/etcd#14009). CI saw that state twice after the fault lab's lost quorum (the forced member had been killed
/// mid-stop): every guarded write then landed on some members and not others, and a VM declared halted through one host
/// was running through another. A restored database starts a new log at its own state (the joiners are sent the whole
/// database) under a new cluster ID (the old members, started again from their old data, cannot talk to it).
/// </remarks>
public static class StandaloneRestore
{
    private static string Staging(EtcdMemberOptions options) => options.DataDirectory.TrimEnd('/') + ".restore";

    private static string DatabaseFile(EtcdMemberOptions options) => Path.Combine(options.DataDirectory, "member", "snap", "db");

    private static string SnapshotFile(EtcdMemberOptions options) => options.DataDirectory.TrimEnd('/') + ".snapshot.db";

    /// <summary>
    /// A snapshot of the running member, everything it applied (etcd commits its database file only every 100 ms), for
    /// <see cref="StageAsync"/>. A member that does not answer leaves no snapshot, and its file is restored instead.
    /// </summary>
    public static async Task SaveSnapshotAsync(EtcdMemberOptions options, EtcdTlsFiles? tls, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var snapshot = SnapshotFile(options);
        File.Delete(snapshot);
        var arguments = new List<string> { $"--endpoints={options.ClientUrl}", "--command-timeout=30s" };
        if (tls is not null)
        {
            arguments.AddRange([$"--cacert={tls.CaCertificateFile}", $"--cert={tls.CertificateFile}", $"--key={tls.KeyFile}"]);
        }

        var result = await CommandRunner.RunAsync(options.EtcdctlExecutable, [.. arguments, "snapshot", "save", snapshot], cancellationToken, TimeSpan.FromSeconds(60));
        if (!result.Succeeded)
        {
            File.Delete(snapshot);
            File.Delete(snapshot + ".part");
            logger.LogWarning(NoSnapshot, "etcd member {Name} gave no snapshot ({Error}); its database file will be restored instead", options.Name,
                result.StandardError.Trim());
        }
    }

    /// <summary>
    /// Restores the stopped member's database into a staging directory next to its data (made afresh each time, so a
    /// restore cut short is simply done again). The member must not run: its file would be copied mid-write.
    /// </summary>
    public static async Task StageAsync(EtcdMemberOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var staging = Staging(options);
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }

        var snapshot = SnapshotFile(options);
        var source = File.Exists(snapshot) ? snapshot : DatabaseFile(options);
        if (!File.Exists(source))
        {
            throw new InvalidOperationException($"etcd member {options.Name} has no database to recover the pool from ({source})");
        }

        // A member's own file carries no snapshot hash (etcd's guide asks for --skip-hash-check in exactly this case); a
        // snapshot's hash is checked.
        await CommandRunner.RunCheckedAsync(options.EtcdctlExecutable,
        [
            "snapshot", "restore", source, .. source == snapshot ? Array.Empty<string>() : ["--skip-hash-check"],
            "--name", options.Name,
            "--initial-cluster", $"{options.Name}={options.PeerUrl}",
            "--initial-advertise-peer-urls", options.PeerUrl,
            "--initial-cluster-token", "corral-" + Guid.NewGuid().ToString("N"),
            "--data-dir", staging,
        ], cancellationToken, TimeSpan.FromMinutes(5));
        logger.LogInformation(Restored, "Restored etcd member {Name}'s {Source} into a one-member cluster in {Staging}", options.Name,
            source == snapshot ? "snapshot" : "database file", staging);
    }

    /// <summary>
    /// Puts the staged restore in place of the member's data, the old data set aside (<c>.previous</c>). Done again after
    /// a crash at any point: once the staging directory is gone, the restored data is in place.
    /// </summary>
    public static void Install(LocalEtcdMember member)
    {
        ArgumentNullException.ThrowIfNull(member);
        var staging = Staging(member.Options);
        if (!Directory.Exists(staging))
        {
            return;
        }

        member.SetDataAside();
        Directory.Move(staging, member.Options.DataDirectory);
        File.Delete(SnapshotFile(member.Options));
    }

    private static readonly EventId Restored = new(1570, "PoolDatabaseRestoredStandalone");
    private static readonly EventId NoSnapshot = new(1572, "PoolDatabaseSnapshotUnavailable");
}
