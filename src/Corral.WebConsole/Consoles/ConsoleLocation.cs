using System.Globalization;

namespace Corral.WebConsole.Consoles;

/// <summary>
/// Where a console is reached, as XenServer writes it in <c>console.location</c>: HTTPS on the VM's host, and
/// <c>/console?uuid=&lt;console uuid&gt;</c>. A client opens a websocket there, adding <c>&amp;session_id=</c>.
/// </summary>
public static class ConsoleLocation
{
    public const string Path = "/console";

    /// <param name="port">The host's HTTPS port (443 is left out of the URL).</param>
    public static string For(string hostAddress, int port, string consoleUuid)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostAddress);
        ArgumentException.ThrowIfNullOrEmpty(consoleUuid);
        // An IPv6 literal needs brackets in a URL.
        var host = hostAddress.Contains(':', StringComparison.Ordinal) && !hostAddress.StartsWith('[') ? $"[{hostAddress}]" : hostAddress;
        var authority = port == 443 ? host : host + ":" + port.ToString(CultureInfo.InvariantCulture);
        return $"https://{authority}{Path}?uuid={Uri.EscapeDataString(consoleUuid)}";
    }
}
