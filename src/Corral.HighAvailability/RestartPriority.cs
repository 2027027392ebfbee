namespace Corral.HighAvailability;

/// <summary>XenServer's <c>VM.ha_restart_priority</c> values.</summary>
public static class RestartPriority
{
    /// <summary>Protected: counted in the failover plan and restarted first.</summary>
    public const string Restart = "restart";

    /// <summary>Restarted after the protected VMs, if room remains; not counted in the plan.</summary>
    public const string BestEffort = "best-effort";

    /// <summary>Not restarted.</summary>
    public const string Unprotected = "";

    public static bool IsValid(string value) => value is Restart or BestEffort or Unprotected;
}
