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
            var pool = tx.Create(XenClasses.PoolSchema);
            pool.Set(XenApi.Pool.NameLabel, options.Value.PoolName);
            pool.Set(XenApi.Pool.Master, identity.Ref);
            await sessions.SetPasswordAsync(SessionService.RootUser, options.Value.InitialRootPassword, cancellationToken);
        }

        var host = await database.TryGetAsync(XenClasses.Host, identity.Ref, cancellationToken);
        var (total, free) = HostMemory.Read(options.Value);
        if (host is null)
        {
            var metrics = tx.Create(XenClasses.HostMetricsSchema, reference: identity.MetricsRef);
            metrics.Set(XenApi.HostMetrics.MemoryTotal, total);
            metrics.Set(XenApi.HostMetrics.MemoryFree, free);
            metrics.Set(XenApi.HostMetrics.LastUpdated, DateTime.UtcNow);
            var created = tx.Create(XenClasses.HostSchema, reference: identity.Ref);
            Apply(created, facts, options.Value, agentStartUtc, identity, powerCycled: false);
            created.Set(XenApi.Host.Uuid, identity.Uuid);
            created.Set(XenApi.Host.Metrics, identity.MetricsRef);
            created.Set(XenApi.Host.NameLabel, options.Value.HostName);
            created.Set(XenApi.Host.Enabled, true);
        }
        else
        {
            var h = host.Clone();
            Apply(h, facts, options.Value, agentStartUtc, identity, powerCycled);
            tx.Update(h);
            await UpdateMetricsAsync(total, free, cancellationToken);
        }

        await database.CommitAsync(tx, cancellationToken);
        await SyncCpusAsync(facts.Cpus, cancellationToken);
        var upgrading = await PoolRecord.RefreshAsync(database, cancellationToken);
        logger.LogInformation("Host record written: {Cpus} CPU(s), kernel {Kernel}, reporting {Brand} {Version} (Corral {Corral})",
            facts.Cpus.CpuCount, facts.KernelRelease, XenServerVersion.ProductBrand, XenServerVersion.ProductVersion, InstalledVersion.Current);
        if (upgrading)
        {
            logger.LogWarning(AgentEvents.RollingUpgrade,
                "The pool's hosts run different builds of Corral: a rolling upgrade is in progress (VMs move only to hosts as new as theirs; VMs start on the newest)");
        }
    }

    /// <summary>
    /// Sets the host fields that come from the machine and this build, refreshed at every start: what a client may
    /// index (software_version, cpu_info, capabilities, chipset_info, bios_strings, license_params...), and the boot
    /// and agent start times in other_config.
    /// </summary>
    public static void ApplyMachineFields(XenObject host, MachineFacts facts, AgentOptions options, DateTime agentStartUtc)
    {
        host.Set(XenApi.Host.Hostname, options.HostName);
        host.Set(XenApi.Host.Address, options.Address);
        host.Set(XenApi.Host.APIVersionMajor, XenServerVersion.ApiVersionMajor);
        host.Set(XenApi.Host.APIVersionMinor, XenServerVersion.ApiVersionMinor);
        host.Set(XenApi.Host.APIVersionVendor, XenServerVersion.ApiVersionVendor);
        host.Set(XenApi.Host.APIVersionVendorImplementation, new Dictionary<string, string>());
        host.Set(XenApi.Host.SoftwareVersion, XenServerVersion.SoftwareVersion(facts.KernelRelease, InstalledVersion.Current));
        host.Set(XenApi.Host.Capabilities, Capabilities);
        host.Set(XenApi.Host.CpuInfo, facts.Cpus.Summary(facts.NumaNodes));
        host.Set(XenApi.Host.CpuConfiguration, new Dictionary<string, string>());
        host.Set(XenApi.Host.ChipsetInfo, new Dictionary<string, string> { ["iommu"] = facts.Iommu ? "true" : "false" });
        host.Set(XenApi.Host.BiosStrings, facts.BiosStrings);
        host.Set(XenApi.Host.LicenseParams, HostLicense.LicenseParams());
        host.Set(XenApi.Host.Edition, HostLicense.Edition);
        host.Set(XenApi.Host.Editions, [HostLicense.Edition]);
        // Xen's scheduler has no counterpart: a VM's vCPUs are threads the Linux scheduler runs.
        host.Set(XenApi.Host.SchedPolicy, "");
        host.Set(XenApi.Host.VirtualHardwarePlatformVersions, VirtualHardwarePlatformVersions.Cast<object?>().ToList());
        host.Set(XenApi.Host.Updates, []);
        host.Set(XenApi.Host.UpdatesRequiringReboot, []);
        host.Set(XenApi.Host.Patches, []);
        var other = host.Get(XenApi.Host.OtherConfig).ToDictionary(StringComparer.Ordinal);
        other["boot_time"] = EpochSeconds(facts.BootTimeUtc);
        other["agent_start_time"] = EpochSeconds(agentStartUtc);
        host.Set(XenApi.Host.OtherConfig, other);
    }

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

    private static void Apply(XenObject host, MachineFacts facts, AgentOptions options, DateTime agentStartUtc, HostIdentity identity, bool powerCycled)
    {
        ApplyMachineFields(host, facts, options, agentStartUtc);
        // Chosen once (host.set_iscsi_iqn changes it), kept in the field and, as xapi does, in other_config.
        if (host.Get(XenApi.Host.IscsiIqn).Length == 0)
        {
            host.Set(XenApi.Host.IscsiIqn, IscsiIqn(facts, identity.Uuid, DateTime.UtcNow));
        }

        var other = host.Get(XenApi.Host.OtherConfig).ToDictionary(StringComparer.Ordinal);
        other["iscsi_iqn"] = host.Get(XenApi.Host.IscsiIqn);
        host.Set(XenApi.Host.OtherConfig, other);
        if (powerCycled)
        {
            host.Set(XenApi.Host.Enabled, true);
            var operations = host.Get(XenApi.Host.CurrentOperations)
                .Where(kv => kv.Value is not (HostAllowedOperations.Shutdown or HostAllowedOperations.Reboot))
                .ToDictionary(StringComparer.Ordinal);
            host.Set(XenApi.Host.CurrentOperations, operations);
        }
    }

    private async Task UpdateMetricsAsync(long total, long free, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.HostMetrics, identity.MetricsRef)], (objs, tx) =>
        {
            var m = objs[0].Clone();
            m.Set(XenApi.HostMetrics.MemoryTotal, total);
            m.Set(XenApi.HostMetrics.MemoryFree, free);
            m.Set(XenApi.HostMetrics.LastUpdated, DateTime.UtcNow);
            tx.Update(m);
        }, cancellationToken);

    /// <summary>
    /// One <c>host_cpu</c> per logical CPU, as xapi keeps them: created, corrected or removed so that the records match
    /// /proc/cpuinfo (the records of unchanged CPUs keep their references and uuids).
    /// </summary>
    private async Task SyncCpusAsync(CpuInfo cpus, CancellationToken cancellationToken)
    {
        var existing = (await database.GetAllAsync(XenApi.HostCpu.ClassName, cancellationToken))
            .Where(c => c.Get(XenApi.HostCpu.Host) == identity.Ref).ToList();
        var kept = new Dictionary<long, XenObject>();
        var writes = new List<Action<PoolTransaction>>();
        // Of duplicates, the record written first (lowest revision) stays: clients may hold its reference.
        foreach (var record in existing.OrderBy(c => c.ModRevision).ThenBy(c => c.Ref, StringComparer.Ordinal))
        {
            var number = record.Get(XenApi.HostCpu.Number);
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
