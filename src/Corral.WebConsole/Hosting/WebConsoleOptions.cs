namespace Corral.WebConsole.Hosting;

/// <summary>Settings of the web console (configuration section <c>Corral:WebConsole</c>).</summary>
public sealed class WebConsoleOptions
{
    /// <summary>The browser app's files; by default those built next to the agent.</summary>
    public string ContentDirectory { get; set; } = Path.Combine(AppContext.BaseDirectory, "webconsole");

    /// <summary>
    /// Origins, besides the pool's own host addresses, whose pages may call this host's API from a browser (a DNS name
    /// or a proxy the administrator reaches the console through), as <c>https://name[:port]</c> or <c>http://name[:port]</c>.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>This host's own address, allowed before the pool database has been read.</summary>
    public string? OwnAddress { get; set; }
}
