using System.Text.Json;
using Corral.Model;
using Corral.Platform;

namespace Corral.Agent.Networking;

/// <summary>
/// The IPv4 configuration an administrator gave a PIF (<c>PIF.reconfigure_ip</c>): its mode, and for a static one the
/// address, netmask and gateway; the name servers are recorded as given. Kept on the host (<see cref="PifAddressStore"/>)
/// and applied again at every start, as XenServer's network daemon keeps its interfaces' configuration.
/// </summary>
public sealed record PifAddressSettings(IpConfigurationMode Mode, string IP, string Netmask, string Gateway, string DNS)
{
    /// <summary>The settings as the operation carries them (the API checked them).</summary>
    public static PifAddressSettings FromArguments(Func<string, string> argument) => new(
        Enum.Parse<IpConfigurationMode>(argument("mode"), ignoreCase: true), argument("IP"), argument("netmask"), argument("gateway"), argument("DNS"));
}

/// <summary>
/// The PIFs' IP configurations this host was given, by device, in one file of its state directory (written whole by a
/// rename, read once): what the agent applies again when it starts, and what the PIF records say of mode, gateway and DNS.
/// </summary>
public sealed class PifAddressStore(string path)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };
    private readonly Lock _lock = new();

    // The file as last read or written: this store is its only writer, so it is read once (the NIC refresh asks every 10 s).
    private Dictionary<string, PifAddressSettings>? _settings;

    public string Path { get; } = path;

    public IReadOnlyDictionary<string, PifAddressSettings> Load()
    {
        lock (_lock)
        {
            return new Dictionary<string, PifAddressSettings>(_settings ??= Read(), StringComparer.Ordinal);
        }
    }

    public void Save(string device, PifAddressSettings settings)
    {
        lock (_lock)
        {
            var all = new Dictionary<string, PifAddressSettings>(_settings ?? Read(), StringComparer.Ordinal) { [device] = settings };
            PrivateFile.Replace(Path, JsonSerializer.Serialize(all, Json) + "\n");
            _settings = all;
        }
    }

    private Dictionary<string, PifAddressSettings> Read()
    {
        if (!File.Exists(Path))
        {
            return new Dictionary<string, PifAddressSettings>(StringComparer.Ordinal);
        }

        try
        {
            var read = JsonSerializer.Deserialize<Dictionary<string, PifAddressSettings>>(File.ReadAllText(Path), Json);
            return new Dictionary<string, PifAddressSettings>(read ?? [], StringComparer.Ordinal);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{Path}: the PIFs' IP configurations cannot be read: {ex.Message}", ex);
        }
    }
}
