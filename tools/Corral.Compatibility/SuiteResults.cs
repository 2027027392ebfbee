using System.Text.Json;

namespace Corral.Compatibility;

/// <summary>One printed line of a conformance script: ok, warn, note or FAIL, the step, what it saw.</summary>
public sealed record StepLine(string Status, string Name, string Detail);

/// <summary>One script of the suite run through one client.</summary>
public sealed record ScriptRun(string Script, string Client, string BaseUrl, bool Passed, double Seconds, IReadOnlyList<StepLine> Steps)
{
    public IEnumerable<StepLine> Failures => Steps.Where(s => s.Status == "FAIL");

    public IEnumerable<StepLine> Warnings => Steps.Where(s => s.Status == "warn");
}

/// <summary>What test/conformance/run_suite.py wrote: every script's run, against which pool, from which commit.</summary>
public sealed record SuiteResults(string BaseUrl, string Started, string Commit, double Seconds, IReadOnlyList<ScriptRun> Runs)
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static SuiteResults Parse(string json) =>
        JsonSerializer.Deserialize<SuiteResults>(json, Options) ?? throw new InvalidDataException("the results file holds null");

    /// <summary>The results at <paramref name="path"/>, or null when the suite has not run here.</summary>
    public static SuiteResults? Load(string path) => File.Exists(path) ? Parse(File.ReadAllText(path)) : null;

    /// <summary>The pool URLs the suite ran against (http://host, https://host), in order.</summary>
    public IEnumerable<string> BaseUrls => Runs.Select(r => r.BaseUrl).Distinct();

    public ScriptRun? Find(string baseUrl, string script, string client) =>
        Runs.FirstOrDefault(r => r.BaseUrl == baseUrl && r.Script == script && r.Client == client);
}
