using Corral.Model;

namespace Corral.Storage;

/// <summary>Finds the driver for an SR type.</summary>
public sealed class SrDrivers(IEnumerable<ISrDriver> drivers)
{
    private readonly Dictionary<string, ISrDriver> _byType = drivers.ToDictionary(d => d.Type, StringComparer.OrdinalIgnoreCase);

    public IEnumerable<string> Types => _byType.Keys;

    /// <exception cref="XenApiException">SR_UNKNOWN_DRIVER.</exception>
    public ISrDriver Get(string type) =>
        _byType.GetValueOrDefault(type) ?? throw new XenApiException(ErrorCodes.SrUnknownDriver, type);

    /// <summary>The driver of an SR type, or null for a type Corral has none for.</summary>
    public ISrDriver? Find(string type) => _byType.GetValueOrDefault(type);

    public static SrDrivers Default { get; } = new([new FileSrDriver(), new IsoSrDriver()]);
}
