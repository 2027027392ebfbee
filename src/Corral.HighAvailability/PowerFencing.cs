namespace Corral.HighAvailability;

/// <summary>The host power-on modes (<c>host.power_on_mode</c>) Corral can fence a host with, and what each needs.</summary>
public static class PowerFencing
{
    public const string None = "";
    public const string Ipmi = "IPMI";

    /// <summary>The lab's power switch: <c>./lab pull-plug &lt;slot&gt;</c>.</summary>
    public const string Lab = "lab";

    public static readonly IReadOnlySet<string> Modes = new HashSet<string>(StringComparer.Ordinal) { None, Ipmi, Lab };

    /// <summary>The <c>power_on_config</c> keys each mode needs.</summary>
    public static IReadOnlyList<string> RequiredKeys(string mode) => mode switch
    {
        Ipmi => ["power_on_ip", "power_on_user", "power_on_password"],
        Lab => ["slot"],
        _ => [],
    };
}
