using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// The objects the operation rules read, held in memory with the forward links between them indexed (which VBDs
/// point at a VM or a VDI...). Reverse-link fields (<c>VM.VBDs</c>) are never used here: the pool database computes
/// them when an object is read, so a copy of an object may carry stale ones; the forward links are authoritative.
/// Not thread-safe: one owner at a time.
/// </summary>
public sealed class PoolObjectIndex
{
    /// <summary>The classes the rules read.</summary>
    public static readonly IReadOnlyList<string> Classes =
    [
        XenClasses.Pool, XenClasses.Host, XenClasses.HostMetrics, XenClasses.VM, XenClasses.VMMetrics, XenClasses.VMGuestMetrics, XenClasses.VBD,
        XenClasses.VDI, XenClasses.SR, XenClasses.PBD, XenClasses.VIF, XenClasses.PIF, XenApi.VTPM.ClassName, XenApi.Cluster.ClassName, XenClasses.Task,
    ];

    private static readonly (string Class, string Field)[] Links =
    [
        (XenClasses.VBD, "VM"), (XenClasses.VBD, "VDI"), (XenClasses.VIF, "VM"), (XenClasses.VIF, "network"), (XenClasses.VDI, "SR"),
        (XenClasses.PBD, "SR"), (XenApi.VTPM.ClassName, "VM"), (XenClasses.PIF, "network"), (XenClasses.VM, "resident_on"),
        (XenClasses.VM, "metrics"), (XenClasses.VM, "guest_metrics"), (XenClasses.Host, "metrics"),
    ];

    private static readonly HashSet<string> Tracked = new(Classes, StringComparer.Ordinal);

    private readonly Dictionary<string, Dictionary<string, XenObject>> _objects = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Class, string Field), Dictionary<string, HashSet<string>>> _links =
        Links.ToDictionary(l => l, _ => new Dictionary<string, HashSet<string>>(StringComparer.Ordinal));

    public static bool IsTracked(string className) => Tracked.Contains(className);

    public XenObject? Find(string className, string reference) =>
        _objects.TryGetValue(className, out var byRef) && byRef.TryGetValue(reference, out var obj) ? obj : null;

    public IReadOnlyCollection<XenObject> All(string className) =>
        _objects.TryGetValue(className, out var byRef) ? byRef.Values : [];

    /// <summary>The pool object (there is one).</summary>
    public XenObject? Pool => All(XenClasses.Pool).FirstOrDefault();

    /// <summary>The objects of <paramref name="className"/> whose ref field <paramref name="field"/> names <paramref name="target"/>.</summary>
    public IEnumerable<XenObject> Referring(string className, string field, string target)
    {
        if (!_links.TryGetValue((className, field), out var byTarget))
        {
            throw new InvalidOperationException($"{className}.{field} is not an indexed link");
        }

        return byTarget.TryGetValue(target, out var refs) ? refs.Select(r => Find(className, r)!).ToList() : [];
    }

    /// <summary>Adds or replaces an object.</summary>
    public void Put(XenObject obj)
    {
        Remove(obj.Class, obj.Ref);
        if (!_objects.TryGetValue(obj.Class, out var byRef))
        {
            _objects[obj.Class] = byRef = new Dictionary<string, XenObject>(StringComparer.Ordinal);
        }

        byRef[obj.Ref] = obj;
        foreach (var (cls, field) in Links.Where(l => l.Class == obj.Class))
        {
            var target = obj.GetString(field);
            if (!OpaqueRef.IsNull(target))
            {
                var byTarget = LinkTable(cls, field);
                if (!byTarget.TryGetValue(target, out var refs))
                {
                    byTarget[target] = refs = new HashSet<string>(StringComparer.Ordinal);
                }

                refs.Add(obj.Ref);
            }
        }
    }

    public void Remove(string className, string reference)
    {
        if (Find(className, reference) is not { } old)
        {
            return;
        }

        _objects[className].Remove(reference);
        foreach (var (cls, field) in Links.Where(l => l.Class == className))
        {
            var byTarget = LinkTable(cls, field);
            if (byTarget.TryGetValue(old.GetString(field), out var refs))
            {
                refs.Remove(reference);
                if (refs.Count == 0)
                {
                    byTarget.Remove(old.GetString(field));
                }
            }
        }
    }

    private Dictionary<string, HashSet<string>> LinkTable(string className, string field) => _links[(className, field)];

    /// <summary>
    /// Reads every object of the tracked classes. Tasks are read last: a task named in some object's
    /// <c>current_operations</c> was created before that entry was written, so it is found unless it has gone since.
    /// </summary>
    public static async Task<PoolObjectIndex> LoadAsync(IPoolDatabase database, CancellationToken cancellationToken)
    {
        var index = new PoolObjectIndex();
        foreach (var className in Classes)
        {
            foreach (var obj in await database.GetAllAsync(className, cancellationToken))
            {
                index.Put(obj);
            }
        }

        return index;
    }

    /// <summary>An index of just these objects (what one check needs, read for it).</summary>
    public static PoolObjectIndex Of(IEnumerable<XenObject?> objects)
    {
        var index = new PoolObjectIndex();
        foreach (var obj in objects)
        {
            if (obj is not null)
            {
                index.Put(obj);
            }
        }

        return index;
    }
}
