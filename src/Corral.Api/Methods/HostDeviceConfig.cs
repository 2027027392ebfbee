using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// A PBD's device_config as its host uses it to reach the storage: the passwords' values (<see cref="DeviceConfigSecrets"/>)
/// and, for an iSCSI SR (a <c>target</c>) that names no <c>localIQN</c>, the host's own initiator name, as SM's ISCSISR takes it
/// (the host's <c>other_config:iscsi_iqn</c>, kept equal to <c>Host.iscsi_iqn</c>): a target that admits listed
/// initiators only then admits the host under the name its administrator listed.
/// </summary>
public static class HostDeviceConfig
{
    public const string LocalIqn = "localIQN";

    public static async Task<Dictionary<string, string>> ResolveAsync(IPoolDatabase database, IReadOnlyDictionary<string, string> config, string hostRef,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var resolved = await DeviceConfigSecrets.ResolveAsync(database, config, cancellationToken);
        // An iSCSI SR's (or probe's) device_config names its portal as target, with or without a targetIQN yet: a
        // probe's discovery must log in under the host's name too, or a masked target hides from it.
        if (resolved.ContainsKey("target") && string.IsNullOrEmpty(resolved.GetValueOrDefault(LocalIqn))
            && await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken) is { } host
            && IqnOf(host) is { } iqn)
        {
            resolved[LocalIqn] = iqn;
        }

        return resolved;
    }

    /// <summary>The host's initiator name: other_config's, as SM reads it, else the field's; null when it has none.</summary>
    public static string? IqnOf(XenObject host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return host.Get(XenApi.Host.OtherConfig).GetValueOrDefault("iscsi_iqn") is { Length: > 0 } other ? other
            : host.Get(XenApi.Host.IscsiIqn) is { Length: > 0 } field ? field : null;
    }
}
