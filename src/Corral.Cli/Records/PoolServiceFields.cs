using System.Security.Cryptography;
using System.Text;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>
/// The parameters of the pool's services: patches and updates, repositories, storage managers, disaster-recovery
/// tasks, VM appliances, groups and snapshot schedules, clusters, vTPMs and observers, in the order and spelling of
/// xapi's records.ml.
/// </summary>
public static class PoolServiceFields
{
    public static IReadOnlyList<XeField> PoolPatch()
    {
        var b = new FieldBuilder("pool_patch");
        return
        [
            b.Uuid(),
            b.NameLabel(settable: false),
            b.NameDescription(settable: false),
            b.Int("size", "size"),
            b.Computed("hosts", c => XeFormat.Set(PatchedHosts(c), ", "), ["host_patches"], new ClassNeed("host_patch", "host_patches"), new ClassNeed("host"))
                .AsSet(PatchedHosts) with { Requires = [("pool_patch", "host_patches"), ("host_patch", "host")] },
            b.Strings("after-apply-guidance", "after_apply_guidance", ", "),
            b.RefUuid("update", "pool_update", "pool_update"),
        ];
    }

    /// <summary>The uuids of the hosts a patch is applied on, through its host patches.</summary>
    private static IReadOnlyList<string> PatchedHosts(FieldContext c) =>
        c.Record.Strings("host_patches").Select(p => c.Cache.UuidOf("host", c.Cache.Find("host_patch", p)?.Str("host"))).ToList();

    public static IReadOnlyList<XeField> PoolUpdate()
    {
        var b = new FieldBuilder("pool_update");
        return
        [
            b.Uuid(),
            b.NameLabel(settable: false),
            b.NameDescription(settable: false),
            b.Str("version", "version"),
            b.Int("installation-size", "installation_size"),
            b.RefsUuids("hosts", "hosts", "host", separator: ", "),
            b.Strings("after-apply-guidance", "after_apply_guidance", ", "),
            b.Bool("enforce-homogeneity", "enforce_homogeneity"),
        ];
    }

    public static IReadOnlyList<XeField> Repository()
    {
        var b = new FieldBuilder("Repository");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Str("binary-url", "binary_url"),
            b.Str("source-url", "source_url"),
            b.Bool("update", "update"),
            b.Str("hash", "hash"),
            b.Str("gpgkey-path", "gpgkey_path").Rw(b.SetString("gpgkey_path")),
            b.Str("origin", "origin"),
            b.Str("certificate", "certificate").AsHidden(),
        ];
    }

    public static IReadOnlyList<XeField> Sm()
    {
        var b = new FieldBuilder("SM");
        return
        [
            b.Uuid(),
            b.NameLabel(settable: false),
            b.NameDescription(settable: false),
            b.Str("type", "type"),
            b.Str("vendor", "vendor"),
            b.Str("copyright", "copyright"),
            b.Str("required-api-version", "required_api_version"),
            b.Strings("capabilities", "capabilities", readable: false).AsDeprecated(),
            b.Map("features", "features"),
            b.Map("configuration", "configuration", readable: false),
            b.Str("driver-filename", "driver_filename"),
            b.Strings("required-cluster-stack", "required_cluster_stack", ", ", readable: false),
            b.Strings("supported-image-formats", "supported_image_formats", readable: false),
        ];
    }

    public static IReadOnlyList<XeField> DrTask()
    {
        var b = new FieldBuilder("DR_task");
        return
        [
            b.Uuid(),
            b.RefsUuids("introduced-SRs", "introduced_SRs", "SR", readable: false),
        ];
    }

    public static IReadOnlyList<XeField> VmAppliance()
    {
        var b = new FieldBuilder("VM_appliance");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.RefsUuids("VMs", "VMs", "VM"),
            b.AllowedOperations(),
            b.CurrentOperations(),
        ];
    }

    public static IReadOnlyList<XeField> VmGroup()
    {
        var b = new FieldBuilder("VM_group");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Enum("placement", "placement", p => p.Replace('_', '-')),
            b.RefsUuids("vm-uuids", "VMs", "VM"),
        ];
    }

    public static IReadOnlyList<XeField> Vmss()
    {
        var b = new FieldBuilder("VMSS");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Bool("enabled", "enabled").Rw(b.SetBool("enabled", "enabled")),
            b.Str("type", "type").Rw(b.SetEnum("type", XenEnumTypes.VmssType)),
            b.Int("retained-snapshots", "retained_snapshots").Rw(b.SetInt("retained_snapshots", "retained-snapshots")),
            b.Str("frequency", "frequency").Rw(b.SetEnum("frequency", XenEnumTypes.VmssFrequency)),
            b.Map("schedule", "schedule").Rw(b.MapRw("schedule")),
            b.Date("last-run-time", "last_run_time"),
            b.RefsUuids("VMs", "VMs", "VM"),
        ];
    }

    public static IReadOnlyList<XeField> Cluster()
    {
        var b = new FieldBuilder("Cluster");
        return
        [
            b.Uuid(),
            b.RefsUuids("cluster-hosts", "cluster_hosts", "Cluster_host"),
            b.Str("cluster-token", "cluster_token"),
            b.Str("cluster-stack", "cluster_stack"),
            b.Int("cluster-stack-version", "cluster_stack_version"),
            b.Float("token-timeout", "token_timeout"),
            b.Float("token-timeout-coefficient", "token_timeout_coefficient"),
            b.Strings("pending-forget", "pending_forget").AsHidden(),
            b.AllowedOperations(),
            b.CurrentOperations(),
            b.Bool("pool-auto-join", "pool_auto_join"),
            b.Map("cluster-config", "cluster_config"),
            b.OtherConfig(),
            b.Bool("is-quorate", "is_quorate"),
            b.Int("quorum", "quorum"),
            b.Int("live-hosts", "live_hosts"),
            b.Int("expected-hosts", "expected_hosts"),
        ];
    }

    public static IReadOnlyList<XeField> ClusterHost()
    {
        var b = new FieldBuilder("Cluster_host");
        return
        [
            b.Uuid(),
            b.RefUuid("cluster", "cluster", "Cluster"),
            b.RefUuid("PIF", "PIF", "PIF"),
            b.RefUuid("host", "host", "host"),
            b.Bool("enabled", "enabled"),
            b.Bool("joined", "joined"),
            b.Bool("live", "live"),
            b.Date("last-update-live", "last_update_live"),
            b.AllowedOperations(),
            b.CurrentOperations(),
            b.Map("other-config", "other_config"),
        ];
    }

    public static IReadOnlyList<XeField> Vtpm()
    {
        var b = new FieldBuilder("VTPM");
        return
        [
            b.Uuid(),
            b.RefUuid("vm-uuid", "VM", "VM"),
            b.RefName("vm-name-label", "VM", "VM"),
            b.Call("secret", async (c, ct) =>
            {
                if (c.Session is null)
                {
                    return null;
                }

                // xe shows a digest of the vTPM's contents, not the contents: MD5, as xe prints it (no security rests on it).
                var contents = Encoding.UTF8.GetBytes(XenValue.AsString(await c.Session.CallAsync("VTPM.get_contents", ct, c.Record.Ref)));
#pragma warning disable CA5351
                var digest = MD5.HashData(contents);
#pragma warning restore CA5351
                return $"MD5={Convert.ToHexStringLower(digest)} size={contents.Length} bytes";
            }),
            b.Bool("is_unique", "is_unique"),
            b.Bool("is_protected", "is_protected"),
            b.AllowedOperations(),
        ];
    }

    public static IReadOnlyList<XeField> Observer()
    {
        var b = new FieldBuilder("Observer");
        return
        [
            b.Uuid(),
            b.RefsUuids("host-uuids", "hosts", "host").Rw(b.SetRefs("hosts", "host")).Rw(b.SetRwWhole("hosts", FieldBuilder.RefByUuid("host"))),
            b.NameLabel(settable: false),
            b.NameDescription(settable: false),
            b.Map("attributes", "attributes").Rw(b.ReplaceMap("attributes")).Rw(ObserverAttributes()),
            b.Strings("endpoints", "endpoints").Rw(b.SetWords("endpoints")).Rw(b.SetRwWhole("endpoints")),
            b.Strings("components", "components").Rw(b.SetWords("components")).Rw(b.SetRwWhole("components")),
            b.Bool("enabled", "enabled").Rw(b.SetBool("enabled", "enabled")),
        ];
    }

    /// <summary>
    /// An observer's attributes, changed key by key by reading them and writing them whole: a key already there keeps
    /// its value, as in xe.
    /// </summary>
    private static MapWriter ObserverAttributes() => new(
        async (session, self, key, value, ct) =>
        {
            var attributes = XenValue.AsMap(await session.CallAsync("Observer.get_attributes", ct, self));
            if (attributes.All(kv => kv.Key != key))
            {
                await session.CallAsync("Observer.set_attributes", ct, self, ToMap([new(key, value), .. attributes]));
            }
        },
        async (session, self, key, ct) =>
        {
            var attributes = XenValue.AsMap(await session.CallAsync("Observer.get_attributes", ct, self));
            await session.CallAsync("Observer.set_attributes", ct, self, ToMap(attributes.Where(kv => kv.Key != key)));
        });

    private static Dictionary<string, string> ToMap(IEnumerable<KeyValuePair<string, string>> pairs)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            map.TryAdd(key, value);
        }

        return map;
    }
}
