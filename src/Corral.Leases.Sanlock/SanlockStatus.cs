using System.Globalization;

namespace Corral.Leases.Sanlock;

/// <summary>A lockspace the host's sanlock daemon has: its name, this host's id in it, its file, and whether it is being added or removed.</summary>
public sealed record JoinedLockspace(string Name, int HostId, string Path, string? Transition);

/// <summary>A lease a process of this host holds through the daemon.</summary>
public sealed record HeldLease(string Lockspace, string Resource, int Pid);

/// <summary>
/// What <c>sanlock client status</c> says the daemon has: its lockspaces (<c>s name:host_id:path:offset [ADD|REM]</c>)
/// and the leases its clients hold (<c>r lockspace:resource:path:offset:lver p pid</c>).
/// </summary>
public sealed record SanlockStatus(IReadOnlyList<JoinedLockspace> Lockspaces, IReadOnlyList<HeldLease> Leases)
{
    public static SanlockStatus Parse(string output)
    {
        var lockspaces = new List<JoinedLockspace>();
        var leases = new List<HeldLease>();
        foreach (var raw in output.Split('\n'))
        {
            var words = raw.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words is ["s", var spec, .. var rest] && LockspaceOf(spec) is var (name, hostId, path))
            {
                lockspaces.Add(new JoinedLockspace(name, hostId, path, rest.Length > 0 ? rest[0] : null));
            }
            else if (words is ["r", var resource, "p", var pidText, ..] && resource.Split(':') is [var lockspace, var name2, ..]
                     && int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                leases.Add(new HeldLease(lockspace, name2, pid));
            }
        }

        return new SanlockStatus(lockspaces, leases);
    }

    /// <summary><c>name:host_id:path:offset</c>; the path may hold colons, the offset is the last field.</summary>
    private static (string Name, int HostId, string Path)? LockspaceOf(string spec)
    {
        var first = spec.IndexOf(':', StringComparison.Ordinal);
        var second = first < 0 ? -1 : spec.IndexOf(':', first + 1);
        var last = spec.LastIndexOf(':');
        if (second < 0 || last <= second
            || !int.TryParse(spec.AsSpan(first + 1, second - first - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var hostId))
        {
            return null;
        }

        return (spec[..first], hostId, spec[(second + 1)..last]);
    }
}
