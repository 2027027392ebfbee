using Microsoft.Extensions.Options;

namespace Corral.Leases.Sanlock;

/// <summary>
/// <c>Corral:Sanlock</c>: whether this host's VMs on shared SRs hold leases through the host's sanlock daemon, and how to
/// reach it. Every host of a pool should have the same setting: a host without leases does not see the others'.
/// </summary>
public sealed class SanlockOptions
{
    public const string Section = "Corral:Sanlock";

    public bool Enabled { get; set; }

    /// <summary>The sanlock command (Debian's package installs it on PATH).</summary>
    public string Binary { get; set; } = "sanlock";

    /// <summary>The daemon's run directory (its socket), when not sanlock's default <c>/run/sanlock</c>: each lab host has its own.</summary>
    public string? RunDirectory { get; set; }

    /// <summary>
    /// The I/O timeout written into each lockspace (sanlock's <c>-o</c>), whole seconds. sanlock renews a host's delta
    /// lease every 2 × this, kills the lease holders of a host that could not renew for 8 × this (the storage lost that
    /// long), and lets another host take a dead host's leases by itself only after 8 × this + 60 s. sanlock's and oVirt's
    /// default is 10: a storage outage under 80 s kills no VM.
    /// </summary>
    public int IoTimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// Where the lease volume of an NFS or iSCSI SR is exported as a file for sanlock (qemu-storage-daemon, FUSE):
    /// <c>&lt;sr uuid&gt;.leases</c> in it. An absolute path, this host's own (each lab host has one).
    /// </summary>
    public string VolumeDirectory { get; set; } = "/run/corral/leases";

    /// <summary>How long joining an SR's lockspace may take (sanlock waits for the delta lease: about 2-3 × the I/O timeout).</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Binary))
        {
            problems.Add($"{Section}:Binary is empty");
        }

        if (!Path.IsPathFullyQualified(VolumeDirectory))
        {
            problems.Add($"{Section}:VolumeDirectory ({VolumeDirectory}) must be an absolute path");
        }

        if (IoTimeoutSeconds is < 1 or > 60)
        {
            problems.Add($"{Section}:IoTimeoutSeconds is {IoTimeoutSeconds}; sanlock takes whole seconds from 1 to 60");
        }

        if (JoinTimeout < TimeSpan.FromSeconds(4 * IoTimeoutSeconds))
        {
            problems.Add($"{Section}:JoinTimeout ({JoinTimeout.TotalSeconds} s) is under 4 × IoTimeoutSeconds: sanlock takes about 3 × it to join a lockspace");
        }

        return problems;
    }
}

/// <summary>Refuses, at start, <see cref="SanlockOptions"/> with problems, listing them all.</summary>
public sealed class SanlockOptionsValidation : IValidateOptions<SanlockOptions>
{
    public ValidateOptionsResult Validate(string? name, SanlockOptions options) =>
        options.Enabled && options.Problems() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
