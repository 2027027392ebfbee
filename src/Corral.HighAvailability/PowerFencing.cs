namespace Corral.HighAvailability;

/// <summary>The host power-on modes (<c>host.power_on_mode</c>) Corral can fence a host with, and what each needs.</summary>
public static class PowerFencing
{
    public const string None = "";
    public const string Ipmi = "IPMI";

    /// <summary>The lab's power switch: <c>./lab pull-plug &lt;slot&gt;</c>.</summary>
    public const string Lab = "lab";

    public static readonly IReadOnlySet<string> Modes = new HashSet<string>(StringComparer.Ordinal) { None, Ipmi, Lab };

    /// <summary>A BMC password as given (xe, scripts): never stored, it becomes a <c>secret</c>.</summary>
    public const string PasswordKey = "power_on_password";

    /// <summary>The uuid of the <c>secret</c> holding the BMC password, as xapi and XenCenter keep it.</summary>
    public const string PasswordSecretKey = "power_on_password_secret";

    /// <summary>The <c>power_on_config</c> keys each mode needs (IPMI also a password: <see cref="PasswordKey"/> or <see cref="PasswordSecretKey"/>).</summary>
    public static IReadOnlyList<string> RequiredKeys(string mode) => mode switch
    {
        Ipmi => ["power_on_ip", "power_on_user"],
        Lab => ["slot"],
        _ => [],
    };

    /// <summary>Whether the mode needs a password in its config.</summary>
    public static bool NeedsPassword(string mode) => mode == Ipmi;
}
