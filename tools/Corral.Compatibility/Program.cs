using Corral.Compatibility;
using Corral.Model;

// tools/generate-compatibility [--results <last-run.json>] [--output <compatibility.md>]
var root = FindRoot(AppContext.BaseDirectory) ?? FindRoot(Directory.GetCurrentDirectory())
    ?? throw new InvalidOperationException("run inside the Corral repository");
var resultsPath = Option("--results") ?? Path.Combine(root, ".build", "conformance", "last-run.json");
var outputPath = Option("--output") ?? Path.Combine(root, "docs", "compatibility.md");

var registry = AgentRegistry.Build();
var results = SuiteResults.Load(resultsPath);
var shownResultsPath = Path.GetRelativePath(root, Path.GetFullPath(resultsPath));
await File.WriteAllTextAsync(outputPath, CompatibilityReport.Render(XenApi.AllClasses, registry, results, shownResultsPath));
Console.WriteLine($"wrote {outputPath}" + (results is null ? $" (no suite results at {resultsPath}: the clients' part says so)" : $" (suite run of {results.Started})"));
return 0;

string? Option(string name)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

static string? FindRoot(string start)
{
    for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
        {
            return dir.FullName;
        }
    }

    return null;
}
