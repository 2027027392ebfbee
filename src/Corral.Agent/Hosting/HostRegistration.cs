using System.Globalization;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Hosting;

/// <summary>
/// Writes this host into the pool database at every agent start, as xapi's start-up refreshes its own record: the
/// pool (created if there is none), the host record with what the machine and this build say (version figures, CPUs,
/// firmware strings, licence flags, boot and agent start times), one <c>host_cpu</c> per logical CPU, the host's
/// metrics, and the pool's figures that follow from its hosts. What an administrator sets (name, description, power-on
/// mode, logging, iSCSI IQN once chosen) is written only when the host is created.
/// </summary>
public sealed class HostRegistration(
    IPoolDatabase database,
    HostIdentity identity,
    SessionService sessions,
    IOptions<AgentOptions> options,
    ILogger<HostRegistration> logger)
{
    /// <summary>The host's <c>capabilities</c>: full virtualisation, which QEMU gives under KVM or TCG alike (no Xen PV).</summary>
    public static readonly IReadOnlyList<string> Capabilities = ["hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"];

    /// <summary>
    /// The virtual hardware platform versions Corral's VMs get: 0 and 1 (xapi's 2 adds Xen's vendor PCI device, which
    /// QEMU here does not emulate).
    /// </summary>
    public static readonly IReadOnlyList<long> VirtualHardwarePlatformVersions = [0L, 1L];

    /// <param name="powerCycled">True when the host comes back from <c>host.shutdown</c> or <c>host.reboot</c>: it is
    /// enabled again and the operation is cleared from its <c>current_operations</c>, as xapi's start-up does.</param>
    public async Task RegisterAsync(MachineFacts facts, DateTime agentStartUtc, bool powerCycled, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        if ((await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Count == 0)
        {
            if (string.IsNullOrEmpty(options.Value.InitialRootPassword))
            {
                throw new InvalidOperationException("No pool exists yet and no initial root password is configured (Corral:Agent:InitialRootPassword)");
            }

            logger.LogInformation("Creating pool '{Pool}' with this host as master", options.Value.PoolName);
            tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?>
            {
                ["name_label"] = options.Value.PoolName,
                ["master"] = identity.Ref,
            });
            await sessions.SetPasswordAsync(SessionService.RootUser, options.Value.InitialRootPassword, cancellationToken);
        }

        var fields = MachineFields(facts, options.Value, agentStartUtc);
        var host = await database.TryGetAsync(XenClasses.Host, identity.Ref, cancellationToken);
        var (total, free) = HostMemory.Read(options.Value);
        if (host is null)
        {
            tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?>
            {
                ["memory_total"] = total,
                ["memory_free"] = free,
                ["last_updated"] = DateTime.UtcNow,
            }, identity.MetricsRef);
            var created = new XenObject(XenClasses.HostSchema, identity.Ref, new Dictionary<string, object?>());
            Apply(created, fields, facts, identity, powerCycled: false);
            created["uuid"] = identity.Uuid;
            created["metrics"] = identity.MetricsRef;
            created["name_label"] = options.Value.HostName;
            created["enabled"] = true;
            tx.Create(XenClasses.HostSchema, created.Fields, identity.Ref);
        }
        else
        {
            var h = host.Clone();
            Apply(h, fields, facts, identity, powerCycled);
            tx.Update(h);
            await UpdateMetricsAsync(total, free, cancellationToken);
        }

        await database.CommitAsync(tx, cancellationToken);
        await SyncCpusAsync(facts.Cpus, cancellationToken);
        await PoolRecord.RefreshAsync(database, cancellationToken);
        logger.LogInformation("Host record written: {Cpus} CPU(s), kernel {Kernel}, reporting {Brand} {Version} (Corral {Corral})",
            facts.Cpus.CpuCount, facts.KernelRelease, XenServerVersion.ProductBrand, XenServerVersion.ProductVersion, XenServerVersion.CorralVersion);
    }

    /// <summary>
    /// The host fields that come from the machine and this build, refreshed at every start: what a client may index
    /// (software_version, cpu_info, capabilities, chipset_info, bios_strings, license_params...).
    /// </summary>
    public static Dictionary<string, object?> MachineFields(MachineFacts facts, AgentOptions options, DateTime agentStartUtc) => new(StringComparer.Ordinal)
    {
        ["hostname"] = options.HostName,
        ["address"] = options.Address,
        ["API_version_major"] = XenServerVersion.ApiVersionMajor,
        ["API_version_minor"] = XenServerVersion.ApiVersionMinor,
        ["API_version_vendor"] = XenServerVersion.ApiVersionVendor,
        ["API_version_vendor_implementation"] = new Dictionary<string, object?>(),
        ["software_version"] = XenServerVersion.SoftwareVersion(facts.KernelRelease),
        ["capabilities"] = Capabilities.Cast<object?>().ToList(),
        ["cpu_info"] = facts.Cpus.Summary(facts.NumaNodes).ToDictionary(kv => kv.Key, kv => (object?)kv.Value),
        ["cpu_configuration"] = new Dictionary<string, object?>(),
        ["chipset_info"] = new Dictionary<string, object?> { ["iommu"] = facts.Iommu ? "true" : "false" },
        ["bios_strings"] = facts.BiosStrings.ToDictionary(kv => kv.Key, kv => (object?)kv.Value),
        ["license_params"] = HostLicense.LicenseParams(),
        ["edition"] = HostLicense.Edition,
        ["editions"] = new List<object?> { HostLicense.Edition },
        // Xen's scheduler has no counterpart: a VM's vCPUs are threads the Linux scheduler runs.
        ["sched_policy"] = "",
        ["virtual_hardware_platform_versions"] = VirtualHardwarePlatformVersions.Cast<object?>().ToList(),
        ["updates"] = new List<object?>(),
        ["updates_requiring_reboot"] = new List<object?>(),
        ["patches"] = new List<object?>(),
        ["other_config:boot_time"] = EpochSeconds(facts.BootTimeUtc),
        ["other_config:agent_start_time"] = EpochSeconds(agentStartUtc),
    };

    /// <summary>Epoch seconds as xapi writes them in other_config (OCaml's float spelling: "1740148082.").</summary>
    public static string EpochSeconds(DateTime utc) =>
        ((long)Math.Floor((utc - DateTime.UnixEpoch).TotalSeconds)).ToString(CultureInfo.InvariantCulture) + ".";

    /// <summary>
    /// The host's iSCSI initiator name: the machine's open-iscsi one when configured, else one made as XenServer's
    /// installer makes it (<c>iqn.&lt;yyyy-MM&gt;.&lt;reversed DNS domain&gt;:&lt;8 hex digits&gt;</c>).
    /// </summary>
    public static string IscsiIqn(MachineFacts facts, string hostUuid, DateTime nowUtc)
    {
        if (!string.IsNullOrEmpty(facts.IscsiInitiatorName))
        {
            return facts.IscsiInitiatorName;
        }

        var domain = string.IsNullOrEmpty(facts.DnsDomain) ? "example.com" : facts.DnsDomain;
        var reversed = string.Join('.', domain.Split('.', StringSplitOptions.RemoveEmptyEntries).Reverse());
        return $"iqn.{nowUtc.ToString("yyyy-MM", CultureInfo.InvariantCulture)}.{reversed}:{hostUuid.Split('-')[0]}";
    }

    private static void Apply(XenObject host, Dictionary<string, object?> fields, MachineFacts facts, HostIdentity identity, bool powerCycled)
    {
        var other = host.GetStringMap("other_config").ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
        foreach (var (key, value) in fields)
        {
            if (key.StartsWith("other_config:", StringComparison.Ordinal))
            {
                other[key["other_config:".Length..]] = value;
            }
            else
            {
                host[key] = value;
            }
        }

        // Chosen once (host.set_iscsi_iqn changes it), kept in the field and, as xapi does, in other_config.
        if (host.GetString("iscsi_iqn").Length == 0)
        {
            host["iscsi_iqn"] = IscsiIqn(facts, identity.Uuid, DateTime.UtcNow);
        }

        other["iscsi_iqn"] = host.GetString("iscsi_iqn");
        host["other_config"] = other;
        if (powerCycled)
        {
            host["enabled"] = true;
            var operations = ((Dictionary<string, object?>)host["current_operations"]!)
                .Where(kv => (string?)kv.Value is not ("shutdown" or "reboot"))
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            host["current_operations"] = operations;
        }
    }

    private async Task UpdateMetricsAsync(long total, long free, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.HostMetrics, identity.MetricsRef)], (objs, tx) =>
        {
            var m = objs[0].Clone();
            m["memory_total"] = total;
            m["memory_free"] = free;
            m["last_updated"] = DateTime.UtcNow;
            tx.Update(m);
        }, cancellationToken);

    /// <summary>
    /// One <c>host_cpu</c> per logical CPU, as xapi keeps them: created, corrected or removed so that the records match
    /// /proc/cpuinfo (the records of unchanged CPUs keep their references and uuids).
    /// </summary>
    private async Task SyncCpusAsync(CpuInfo cpus, CancellationToken cancellationToken)
    {
        var existing = (await database.GetAllAsync(XenApi.HostCpu.ClassName, cancellationToken))
            .Where(c => c.GetString("host") == identity.Ref).ToList();
        var kept = new Dictionary<long, XenObject>();
        var writes = new List<Action<PoolTransaction>>();
        // Of duplicates, the record written first (lowest revision) stays: clients may hold its reference.
        foreach (var record in existing.OrderBy(c => c.ModRevision).ThenBy(c => c.Ref, StringComparer.Ordinal))
        {
            var number = record.GetInt("number");
            if (kept.ContainsKey(number) || cpus.Cpus.All(c => c.Number != number))
            {
                writes.Add(tx => tx.Delete(record)); // a CPU gone, or a duplicate
            }
            else
            {
                kept[number] = record;
            }
        }

        foreach (var cpu in cpus.Cpus)
        {
            var wanted = CpuFields(cpu, identity.Ref);
            if (kept.TryGetValue(cpu.Number, out var record))
            {
                if (wanted.Any(kv => !Equals(record[kv.Key], XenApi.HostCpu.Schema.Get(kv.Key).Type.Coerce(kv.Value))))
                {
                    var updated = record.Clone();
                    foreach (var (key, value) in wanted)
                    {
                        updated[key] = value;
                    }

                    writes.Add(tx => tx.Update(updated));
                }
            }
            else
            {
                writes.Add(tx => tx.Create(XenApi.HostCpu.Schema, wanted));
            }
        }

        // etcd bounds the operations of one transaction.
        foreach (var batch in writes.Chunk(30))
        {
            var tx = new PoolTransaction();
            foreach (var write in batch)
            {
                write(tx);
            }

            await database.CommitAsync(tx, cancellationToken);
        }
    }

    /// <summary>A <c>host_cpu</c> record's fields, from its /proc/cpuinfo block as xapi fills them.</summary>
    public static Dictionary<string, object?> CpuFields(LogicalCpu cpu, string hostRef) => new(StringComparer.Ordinal)
    {
        ["number"] = (long)cpu.Number,
        ["vendor"] = cpu.Vendor,
        // xapi keeps whole MHz, 0 when the kernel gives no figure.
        ["speed"] = double.TryParse(cpu.Speed, NumberStyles.Float, CultureInfo.InvariantCulture, out var mhz) ? (long)mhz : 0L,
        ["modelname"] = cpu.ModelName,
        ["family"] = long.TryParse(cpu.Family, NumberStyles.Integer, CultureInfo.InvariantCulture, out var family) ? family : 0L,
        ["model"] = long.TryParse(cpu.Model, NumberStyles.Integer, CultureInfo.InvariantCulture, out var model) ? model : 0L,
        ["stepping"] = cpu.Stepping,
        ["flags"] = cpu.Flags,
        ["features"] = "",
        ["utilisation"] = 0.0,
        ["host"] = hostRef,
    };
}
