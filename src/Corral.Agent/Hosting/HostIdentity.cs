using System.Text.Json;
using Corral.Model;

namespace Corral.Agent.Hosting;

/// <summary>This host's uuid and reference, kept in the state directory so that they survive restarts.</summary>
public sealed record HostIdentity(string Uuid, string Ref, string MetricsRef)
{
    public static HostIdentity LoadOrCreate(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        var path = Path.Combine(stateDirectory, "host.json");
        if (File.Exists(path))
        {
            return JsonSerializer.Deserialize<HostIdentity>(File.ReadAllText(path)) ?? throw new InvalidDataException(path);
        }

        var identity = new HostIdentity(OpaqueRef.NewUuid(), OpaqueRef.New(), OpaqueRef.New());
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(identity));
        File.Move(temporary, path, overwrite: true);
        return identity;
    }

    /// <summary>Hands out Xen-style domain ids, unique on this host, so tap names (vifDOMID.DEV) never collide.</summary>
    private static readonly Lock DomidLock = new();

    public static long NextDomid(string stateDirectory)
    {
        // Concurrent starts in this agent share the counter file; the lock keeps them from colliding on it.
        lock (DomidLock)
        {
            return NextDomidLocked(stateDirectory);
        }
    }

    private static long NextDomidLocked(string stateDirectory)
    {
        var path = Path.Combine(stateDirectory, "next-domid");
        using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        using var reader = new StreamReader(file, leaveOpen: true);
        var text = reader.ReadToEnd();
        var next = long.TryParse(text, out var n) ? n : 1;
        file.SetLength(0);
        using var writer = new StreamWriter(file);
        writer.Write((next + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return next;
    }
}
