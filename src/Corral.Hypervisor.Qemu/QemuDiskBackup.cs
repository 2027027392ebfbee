using System.Net.Sockets;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Snapshots of a running VM's disks: QMP <c>blockdev-backup</c> with <c>sync=full</c> into new images, every disk's job
/// started in one <c>transaction</c>, so that each copy holds its disk as it was at the same instant (the backup job
/// copies a block out before the guest overwrites it). With quiesce, the guest's filesystems are frozen through the
/// QEMU guest agent around that instant only: the jobs copy afterwards while the guest runs on.
/// </summary>
internal sealed class QemuDiskBackup(QmpClient qmp, QgaGuestTools? qga, TimeSpan agentFreshness, ILogger logger)
{
    /// <summary>Names of the jobs and target nodes; a resumed or abandoned snapshot finds its leftovers by them.</summary>
    internal const string Prefix = "snap-";

    private static readonly TimeSpan FreezeTimeout = TimeSpan.FromSeconds(60);

    internal static string NodeName(int diskIndex) => Prefix + QemuCommandLine.DriveId(diskIndex);

    public async Task BackupAsync(IReadOnlyList<DiskBackupTarget> targets, bool quiesce, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var target in targets)
            {
                await AddTargetAsync(target, cancellationToken);
            }

            var actions = new JsonArray();
            foreach (var target in targets)
            {
                actions.Add(new JsonObject
                {
                    ["type"] = "blockdev-backup",
                    ["data"] = new JsonObject
                    {
                        ["job-id"] = NodeName(target.DiskIndex),
                        ["device"] = QemuCommandLine.DriveId(target.DiskIndex),
                        ["target"] = NodeName(target.DiskIndex),
                        ["sync"] = "full",
                        // Kept once ended, so that the outcome is read rather than guessed from its absence.
                        ["auto-dismiss"] = false,
                    },
                });
            }

            // Grouped: one disk's failure cancels them all, so a snapshot is every disk or none.
            var transaction = new JsonObject { ["actions"] = actions, ["properties"] = new JsonObject { ["completion-mode"] = "grouped" } };
            if (quiesce)
            {
                await FrozenAsync(() => qmp.ExecuteAsync("transaction", transaction, cancellationToken), cancellationToken);
            }
            else
            {
                await qmp.ExecuteAsync("transaction", transaction, cancellationToken);
            }

            await WaitAsync(targets.Select(t => NodeName(t.DiskIndex)).ToList(), cancellationToken);
        }
        finally
        {
            await ReleaseNodesAsync(targets.Select(t => t.DiskIndex), CancellationToken.None);
        }
    }

    /// <summary>
    /// The target's node: an iSCSI extent's is a raw node bounded to it, its CHAP password (if any) in a secret object
    /// given over QMP (never on a command line), removed with the node.
    /// </summary>
    private async Task AddTargetAsync(DiskBackupTarget target, CancellationToken cancellationToken)
    {
        string? secretId = null;
        if (QemuBlockProtocol.Credentials(target.Path) is var (_, password))
        {
            secretId = SecretId(target.DiskIndex);
            await qmp.ExecuteAsync("object-add", new JsonObject { ["qom-type"] = "secret", ["id"] = secretId, ["data"] = password }, cancellationToken);
        }

        var node = new JsonObject
        {
            ["driver"] = target.Format,
            ["node-name"] = NodeName(target.DiskIndex),
            ["file"] = QemuBlockProtocol.For(target.Path, secretId),
        };
        QemuBlockProtocol.AddExtent(node, target.Path);
        await qmp.ExecuteAsync("blockdev-add", node, cancellationToken);
    }

    private static string SecretId(int diskIndex) => NodeName(diskIndex) + "-secret";

    /// <summary>Runs <paramref name="instant"/> with the guest's filesystems frozen, and thaws them whatever happens.</summary>
    private async Task FrozenAsync(Func<Task<JsonNode?>> instant, CancellationToken cancellationToken)
    {
        if (qga is null || !qga.IsResponsive(agentFreshness))
        {
            throw new GuestQuiesceException(unsupported: true, "the guest agent is not responding");
        }

        try
        {
            await qga.AskAsync((c, ct) => c.ExecuteAsync("guest-fsfreeze-freeze", null, FreezeTimeout, ct), cancellationToken);
        }
        catch (Exception ex) when (ex is QgaException or TimeoutException or IOException or SocketException)
        {
            // A freeze that timed out may still complete in the guest: thawing is always safe.
            await ThawAsync();
            throw new GuestQuiesceException(unsupported: false, "freezing the guest's filesystems failed: " + ex.Message, ex);
        }

        try
        {
            await instant();
        }
        finally
        {
            await ThawAsync();
        }
    }

    private async Task ThawAsync()
    {
        if (qga is null)
        {
            return;
        }

        // Not cancellable: a guest left frozen stops writing. Tried until the agent answers, within bounds.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                await qga.AskAsync((c, ct) => c.ExecuteAsync("guest-fsfreeze-thaw", null, FreezeTimeout, ct), CancellationToken.None);
                return;
            }
            catch (Exception ex) when (ex is QgaException or TimeoutException or IOException or SocketException)
            {
                logger.LogWarning("Thawing the guest's filesystems failed (attempt {Attempt}): {Reason}", attempt + 1, ex.Message);
                if (ex is QgaException)
                {
                    return; // Answered: not frozen.
                }

                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        }
    }

    private async Task WaitAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        var pending = new HashSet<string>(ids, StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            var jobs = (await qmp.ExecuteAsync("query-jobs", null, cancellationToken) as JsonArray ?? []).OfType<JsonObject>().ToList();
            foreach (var id in pending.ToList())
            {
                var job = jobs.FirstOrDefault(j => j["id"]?.GetValue<string>() == id);
                if (job is null)
                {
                    failures.Add($"{id}: the job vanished");
                    pending.Remove(id);
                }
                else if (job["status"]?.GetValue<string>() == "concluded")
                {
                    if (job["error"]?.GetValue<string>() is { } error)
                    {
                        failures.Add($"{id}: {error}");
                    }

                    await qmp.ExecuteAsync("job-dismiss", new JsonObject { ["id"] = id }, cancellationToken);
                    pending.Remove(id);
                }
            }

            if (pending.Count > 0)
            {
                await Task.Delay(20, cancellationToken);
            }
        }

        if (failures.Count > 0)
        {
            throw new DiskBackupException("disk snapshot failed: " + string.Join("; ", failures));
        }
    }

    /// <summary>
    /// Ends whatever an interrupted snapshot left in this QEMU (an agent that died mid-copy): its jobs cancelled and
    /// dismissed, its target nodes closed, the guest thawed.
    /// </summary>
    public async Task AbandonAsync(CancellationToken cancellationToken)
    {
        if (qga?.IsResponsive(agentFreshness) == true)
        {
            await ThawAsync();
        }

        var jobs = (await qmp.ExecuteAsync("query-jobs", null, cancellationToken) as JsonArray ?? []).OfType<JsonObject>()
            .Select(j => j["id"]?.GetValue<string>() ?? "").Where(id => id.StartsWith(Prefix, StringComparison.Ordinal)).ToList();
        foreach (var id in jobs)
        {
            try
            {
                await qmp.ExecuteAsync("job-cancel", new JsonObject { ["id"] = id }, cancellationToken);
            }
            catch (QmpException)
            {
                // Already concluded: only the dismissal is left.
            }
        }

        for (var i = 0; i < 500 && jobs.Count > 0; i++)
        {
            var now = (await qmp.ExecuteAsync("query-jobs", null, cancellationToken) as JsonArray ?? []).OfType<JsonObject>().ToList();
            foreach (var id in jobs.ToList())
            {
                var job = now.FirstOrDefault(j => j["id"]?.GetValue<string>() == id);
                if (job is null || job["status"]?.GetValue<string>() == "concluded")
                {
                    if (job is not null)
                    {
                        await qmp.ExecuteAsync("job-dismiss", new JsonObject { ["id"] = id }, cancellationToken);
                    }

                    jobs.Remove(id);
                }
            }

            await Task.Delay(10, cancellationToken);
        }

        var nodes = (await qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken) as JsonArray ?? [])
            .OfType<JsonObject>().Select(n => n["node-name"]?.GetValue<string>() ?? "").Where(n => n.StartsWith(Prefix, StringComparison.Ordinal));
        foreach (var node in nodes.Distinct().ToList())
        {
            await TryAsync("blockdev-del", new JsonObject { ["node-name"] = node }, cancellationToken);
        }

        var secrets = (await qmp.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/objects" }, cancellationToken) as JsonArray ?? [])
            .OfType<JsonObject>().Select(o => o["name"]?.GetValue<string>() ?? "").Where(n => n.StartsWith(Prefix, StringComparison.Ordinal));
        foreach (var secret in secrets.ToList())
        {
            await TryAsync("object-del", new JsonObject { ["id"] = secret }, cancellationToken);
        }
    }

    private async Task ReleaseNodesAsync(IEnumerable<int> diskIndexes, CancellationToken cancellationToken)
    {
        foreach (var index in diskIndexes)
        {
            await TryAsync("blockdev-del", new JsonObject { ["node-name"] = NodeName(index) }, cancellationToken);
            await TryAsync("object-del", new JsonObject { ["id"] = SecretId(index) }, cancellationToken);
        }
    }

    private async Task TryAsync(string command, JsonObject arguments, CancellationToken cancellationToken)
    {
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken);
        }
        catch (QmpException ex)
        {
            logger.LogDebug("{Command} {Arguments}: {Reason}", command, arguments.ToJsonString(), ex.Message);
        }
    }
}
