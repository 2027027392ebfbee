using System.Globalization;
using System.Text.RegularExpressions;
using Corral.Hypervisor;
using Corral.Platform;
using Microsoft.Extensions.Options;

namespace Corral.Leases.Sanlock;

/// <summary>What sanlock answered: its result code (0, or a negative errno or SANLK_ code) and everything it printed.</summary>
public sealed record SanlockResult(int Code, string Output)
{
    public bool Succeeded => Code == 0;
}

/// <summary>Who holds a lease on disk: the exclusive owner's host id (if any) and the host ids holding it shared.</summary>
public sealed record LeaseHolders(int? ExclusiveOwner, IReadOnlyList<int> SharedHolders)
{
    public IEnumerable<int> All => SharedHolders.Concat(ExclusiveOwner is { } owner ? [owner] : []).Distinct();
}

/// <summary>
/// The sanlock command line (<c>sanlock client</c> to the host's daemon, <c>sanlock direct</c> to the disk). sanlock
/// prints "&lt;action&gt; done &lt;code&gt;"; the code is what counts, the exit status only says it was not 0.
/// </summary>
public sealed partial class SanlockClient(IOptions<SanlockOptions> options)
{
    /// <summary>sanlock's answers to an acquire refused because another host holds the lease (SANLK_ACQUIRE_IDLIVE and its kin).</summary>
    public static readonly IReadOnlySet<int> HeldElsewhere = new HashSet<int> { -243, -244, -245, -246 };

    /// <summary>EEXIST: this host already has the lockspace, or the process already holds the lease.</summary>
    public const int AlreadyDone = -17;

    private readonly SanlockOptions _options = options.Value;

    public IReadOnlyDictionary<string, string> Environment =>
        _options.RunDirectory is { Length: > 0 } run ? new Dictionary<string, string> { ["SANLOCK_RUN_DIR"] = run } : new Dictionary<string, string>();

    public string Binary => _options.Binary;

    public int IoTimeoutSeconds => _options.IoTimeoutSeconds;

    public static string LockspaceString(string name, int hostId, string path) => $"{name}:{hostId.ToString(CultureInfo.InvariantCulture)}:{path}:0";

    public static string ResourceString(VmLease lease, bool shared = false) =>
        $"{lease.Lockspace}:{lease.Resource}:{lease.Path}:{lease.Offset.ToString(CultureInfo.InvariantCulture)}{(shared ? ":SH" : "")}";

    /// <summary>The size of a lockspace (room for 2000 hosts' delta leases) and of a lease, with 512-byte sectors.</summary>
    public const long AreaSize = 1 << 20;

    /// <summary>Writes an empty lockspace (room for 2000 hosts' delta leases, 1 MiB) into <paramref name="path"/>.</summary>
    public Task<SanlockResult> InitLockspaceAsync(string name, string path, CancellationToken cancellationToken) =>
        RunAsync(["direct", "init", "-s", LockspaceString(name, 0, path), "-o", _options.IoTimeoutSeconds.ToString(CultureInfo.InvariantCulture)], cancellationToken);

    /// <summary>Writes a free lease into <paramref name="lease"/>'s 1 MiB; over a held one it takes the lease from its holders.</summary>
    public Task<SanlockResult> InitResourceAsync(VmLease lease, CancellationToken cancellationToken) =>
        RunAsync(["direct", "init", "-r", ResourceString(lease)], cancellationToken);

    /// <summary>Joins the lockspace as <paramref name="hostId"/>; returns once the host's delta lease is held (seconds).</summary>
    public Task<SanlockResult> AddLockspaceAsync(string name, int hostId, string path, CancellationToken cancellationToken) =>
        RunAsync(["client", "add_lockspace", "-s", LockspaceString(name, hostId, path), "-o", _options.IoTimeoutSeconds.ToString(CultureInfo.InvariantCulture)],
            cancellationToken, _options.JoinTimeout);

    /// <summary>
    /// Leaves the lockspace; returns once the host's delta lease is released. sanlock kills every process of this host
    /// that holds a lease in it: call it only for a lockspace in which <see cref="StatusAsync"/> shows none held.
    /// </summary>
    public Task<SanlockResult> RemoveLockspaceAsync(string name, int hostId, string path, CancellationToken cancellationToken) =>
        RunAsync(["client", "rem_lockspace", "-s", LockspaceString(name, hostId, path)], cancellationToken, _options.JoinTimeout);

    /// <summary>The daemon's lockspaces and the leases held through it; null when it does not answer.</summary>
    public async Task<SanlockStatus?> StatusAsync(CancellationToken cancellationToken)
    {
        var result = await RunAsync(["client", "status"], cancellationToken);
        return result.Succeeded ? SanlockStatus.Parse(result.Output) : null;
    }

    public Task<SanlockResult> InquireLockspaceAsync(string name, int hostId, string path, CancellationToken cancellationToken) =>
        RunAsync(["client", "inq_lockspace", "-s", LockspaceString(name, hostId, path)], cancellationToken);

    /// <summary>Changes how process <paramref name="pid"/> holds the lease (it must hold it), or, if it holds none, acquires it.</summary>
    public async Task<SanlockResult> HoldAsync(VmLease lease, int pid, bool shared, CancellationToken cancellationToken) =>
        await HoldAsync(lease, pid, shared, await HeldModeAsync(lease, pid, cancellationToken), cancellationToken);

    /// <summary>As <see cref="HoldAsync(VmLease, int, bool, CancellationToken)"/>, the process known to hold the lease as <paramref name="held"/>.</summary>
    public async Task<SanlockResult> HoldAsync(VmLease lease, int pid, bool shared, VmLeaseMode? held, CancellationToken cancellationToken)
    {
        var pidText = pid.ToString(CultureInfo.InvariantCulture);
        return held switch
        {
            null => await RunAsync(["client", "acquire", "-r", ResourceString(lease, shared), "-p", pidText], cancellationToken),
            var mode when mode == (shared ? VmLeaseMode.Shared : VmLeaseMode.Exclusive) => new SanlockResult(0, "already held so"),
            _ => await RunAsync(["client", "convert", "-r", ResourceString(lease, shared), "-p", pidText], cancellationToken),
        };
    }

    /// <summary>How process <paramref name="pid"/> holds the lease: exclusive, shared, or not at all (null).</summary>
    public async Task<VmLeaseMode?> HeldModeAsync(VmLease lease, int pid, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["client", "inquire", "-p", pid.ToString(CultureInfo.InvariantCulture)], cancellationToken);
        var prefix = $"{lease.Lockspace}:{lease.Resource}:";
        foreach (var line in result.Output.Split('\n'))
        {
            var text = line.Trim().Trim('"');
            if (text.StartsWith(prefix, StringComparison.Ordinal))
            {
                return text.EndsWith(":SH", StringComparison.Ordinal) ? VmLeaseMode.Shared : VmLeaseMode.Exclusive;
            }
        }

        return null;
    }

    /// <summary>Who holds the lease, read from the disk.</summary>
    public async Task<LeaseHolders> ReadHoldersAsync(VmLease lease, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["direct", "dump", Area(lease.Path, lease.Offset), "-f", "1"], cancellationToken);
        return ParseHolders(result.Output, lease.Resource);
    }

    /// <summary>sanlock's answer to reading a leader where none was ever written (zeros, or other data): SANLK_LEADER_MAGIC.</summary>
    public const int NoLeader = -223;

    /// <summary>
    /// Reads the leader at <paramref name="lease"/>'s area: 0 when it is that very lease (its lockspace's and its own
    /// name, free or held), <see cref="NoLeader"/> when no lease was ever written there, another code otherwise (an I/O
    /// error, another lease: then <c>Resource</c> names the one there).
    /// </summary>
    public async Task<(int Code, string? Resource)> ReadResourceLeaderAsync(VmLease lease, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["direct", "read_leader", "-Z", "512", "-A", "1M", "-r", ResourceString(lease)], cancellationToken);
        return (result.Code, LeaderField(result.Output, "resource_name"));
    }

    /// <summary>
    /// Reads the leader of lockspace <paramref name="name"/> at offset 0 of <paramref name="path"/>: 0 when it is there,
    /// <see cref="NoLeader"/> when no lockspace was ever written there, another code otherwise (an I/O error, another's).
    /// </summary>
    public async Task<int> ReadLockspaceLeaderAsync(string name, string path, CancellationToken cancellationToken) =>
        (await RunAsync(["direct", "read_leader", "-Z", "512", "-A", "1M", "-s", LockspaceString(name, 1, path)], cancellationToken)).Code;

    internal static string? LeaderField(string output, string field) =>
        output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(field + " ", StringComparison.Ordinal))?[(field.Length + 1)..].Trim() is { Length: > 0 } value
            ? value
            : null;

    /// <summary>Parses <c>sanlock direct dump -f 1</c>: the leader line (timestamp not 0: held by "own") and its SH lines.</summary>
    internal static LeaseHolders ParseHolders(string dump, string resource)
    {
        int? owner = null;
        var shared = new List<int>();
        var inResource = false;
        foreach (var line in dump.Split('\n'))
        {
            if (LeaderLine().Match(line) is { Success: true } leader)
            {
                inResource = leader.Groups["resource"].Value == resource;
                if (inResource && leader.Groups["timestamp"].Value.Trim('0').Length > 0)
                {
                    owner = int.Parse(leader.Groups["own"].Value, CultureInfo.InvariantCulture);
                }
            }
            else if (inResource && SharedLine().Match(line) is { Success: true } holder)
            {
                shared.Add(int.Parse(holder.Groups["host"].Value, CultureInfo.InvariantCulture));
            }
        }

        return new LeaseHolders(owner, shared);
    }

    private static string Area(string path, long offset) =>
        $"{path}:{offset.ToString(CultureInfo.InvariantCulture)}:{AreaSize.ToString(CultureInfo.InvariantCulture)}";

    [GeneratedRegex(@"^[0-9a-f]{8}\s+\S+\s+(?<resource>\S+)\s+(?<timestamp>\d{10})\s+(?<own>\d{4})\s+\d{4}\s+\S+$")]
    private static partial Regex LeaderLine();

    [GeneratedRegex(@"^\s+(?<host>\d{4})\s+\d{4}\s+SH\s*$")]
    private static partial Regex SharedLine();

    [GeneratedRegex(@"\b(?<action>[a-z_]+) done (?<code>-?\d+)")]
    private static partial Regex DoneLine();

    /// <summary>The code of the last "&lt;action&gt; done &lt;code&gt;" line, if any.</summary>
    internal static (string Action, int Code)? LastDone(string output) =>
        DoneLine().Matches(output) is { Count: > 0 } matches
            ? (matches[^1].Groups["action"].Value, int.Parse(matches[^1].Groups["code"].Value, CultureInfo.InvariantCulture))
            : null;

    /// <summary>ETIMEDOUT: what a sanlock command that did not answer in time (its storage not answering) comes back as.</summary>
    public const int TimedOut = -110;

    private async Task<SanlockResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        CommandResult result;
        try
        {
            result = await CommandRunner.RunAsync(_options.Binary, arguments, cancellationToken, limit, Environment);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A read of storage that stopped answering: a result like any other failure, not the caller's cancellation.
            return new SanlockResult(TimedOut, $"sanlock {string.Join(' ', arguments.Take(2))} did not answer within {limit.TotalSeconds} s");
        }

        var output = (result.StandardOutput + result.StandardError).Trim();
        // "dump" prints no result line; its exit status says whether it read the disk.
        var code = LastDone(output)?.Code ?? (result.Succeeded ? 0 : -1);
        return new SanlockResult(result.Succeeded ? code : code == 0 ? -1 : code, output);
    }
}
