namespace Corral.Agent.Hosting;

/// <summary>
/// Remembers, in the host's state directory, that the host went down through <c>host.shutdown</c> or
/// <c>host.reboot</c>: the next agent start then enables it again, as XenServer re-enables a host that comes back from
/// a reboot (the host had to be disabled to be shut down). A plain agent restart leaves a disabled host disabled.
/// </summary>
public static class PowerCycle
{
    private static string MarkerOf(string stateDirectory) => Path.Combine(stateDirectory, "power-cycle");

    public static void Mark(string stateDirectory, string operation)
    {
        Directory.CreateDirectory(stateDirectory);
        File.WriteAllText(MarkerOf(stateDirectory), operation + "\n");
    }

    public static bool Pending(string stateDirectory) => File.Exists(MarkerOf(stateDirectory));

    public static void Clear(string stateDirectory) => File.Delete(MarkerOf(stateDirectory));
}
