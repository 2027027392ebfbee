namespace Corral.WebConsole.Hosting;

/// <summary>Where the web console lives on every host.</summary>
public static class WebConsolePaths
{
    /// <summary>The browser app.</summary>
    public const string App = "/console/";
}
