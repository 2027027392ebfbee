using System.Globalization;
using System.Text;

namespace Corral.Compatibility;

/// <summary>The clients' part of the report: each client's connect sequences and operations, from the suite's last run.</summary>
public static class ClientsSection
{
    public static readonly IReadOnlyList<(string Id, string Name)> Clients =
    [
        ("xmlrpc", "Python's `xmlrpc.client` (XML-RPC)"),
        ("xenapi", "XenAPI SDK, `os_xenapi.client.XenAPI` (XML-RPC)"),
        ("jsonrpc", "JSON-RPC 2.0 from Python (`urllib` + `json`)"),
    ];

    public static readonly IReadOnlyList<(string Id, string Name)> Scripts =
    [
        ("connect_xencenter", "XenCenter's connect sequence"),
        ("connect_xo", "Xen Orchestra's connect sequence"),
        ("operations", "Operations"),
        ("roles", "Roles through the pool's directory"),
    ];

    public static void Write(StringBuilder md, SuiteResults? results, string resultsPath)
    {
        md.AppendLine("## Clients").AppendLine();
        md.AppendLine("The conformance suite (`test/conformance/`) drives clients we did not write against a running pool: Python's");
        md.AppendLine("standard `xmlrpc.client`, the classic XenAPI SDK (Debian's `python3-os-xenapi`) and JSON-RPC sent as XenCenter's");
        md.AppendLine("and Xen Orchestra's clients send it. Each runs XenCenter's and Xen Orchestra's connect sequences, call by call as");
        md.AppendLine("their sources make them and checking every answer as those clients do, then the operations: hosts and VMs");
        md.AppendLine("listed, a VM shut down and started (Async tasks followed as Xen Orchestra and as XenCenter follow them), live");
        md.AppendLine("migration there and back, maintenance mode (disable, evacuate, enable) and HA enabled and disabled. Then roles:");
        md.AppendLine("the pool's directory users (read-only, vm-operator) log in and are refused what their roles do not allow.");
        md.AppendLine();
        if (results is null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"The suite has not run here (no `{resultsPath}`): run `/usr/bin/python3 test/conformance/run_suite.py <pool URL>`, then this generator.");
            md.AppendLine();
            return;
        }

        var passed = results.Runs.Count(r => r.Passed);
        md.AppendLine(CultureInfo.InvariantCulture,
            $"Last run: {results.Started}, Corral commit `{results.Commit}`, {results.Seconds:0} s: **{passed} of {results.Runs.Count} passed**.");
        md.AppendLine();
        foreach (var baseUrl in results.BaseUrls)
        {
            WriteTable(md, results, baseUrl);
        }

        WriteDetails(md, results);
    }

    private static void WriteTable(StringBuilder md, SuiteResults results, string baseUrl)
    {
        md.AppendLine(CultureInfo.InvariantCulture, $"Over {baseUrl}:").AppendLine();
        md.Append("| Client |");
        foreach (var (_, name) in Scripts)
        {
            md.Append(CultureInfo.InvariantCulture, $" {name} |");
        }

        md.AppendLine().AppendLine("|---|---|---|---|");
        foreach (var (id, name) in Clients)
        {
            md.Append(CultureInfo.InvariantCulture, $"| {name} |");
            foreach (var (script, _) in Scripts)
            {
                md.Append(CultureInfo.InvariantCulture, $" {Verdict(results.Find(baseUrl, script, id))} |");
            }

            md.AppendLine();
        }

        md.AppendLine();
    }

    private static string Verdict(ScriptRun? run)
    {
        if (run is null)
        {
            return "not run";
        }

        if (run.Passed)
        {
            return "passes";
        }

        var failures = run.Failures.ToList();
        return failures.Count == 0 ? "**fails**" : $"**fails**: {Cell(failures[0].Name)}" + (failures.Count > 1 ? $" (+{failures.Count - 1})" : "");
    }

    private static void WriteDetails(StringBuilder md, SuiteResults results)
    {
        var notable = results.Runs.Where(r => r.Failures.Any() || r.Warnings.Any()).ToList();
        if (notable.Count == 0)
        {
            return;
        }

        md.AppendLine("### Failures and warnings of the last run").AppendLine();
        md.AppendLine("A connect sequence stops at its first failure, as the real client stops there; the operations go on past a");
        md.AppendLine("missing `allowed_operations` entry (XenCenter greys the action out; Xen Orchestra's own UI and the SDKs do not look).");
        md.AppendLine();
        foreach (var run in notable)
        {
            var script = Scripts.FirstOrDefault(s => s.Id == run.Script).Name ?? run.Script;
            var client = Clients.FirstOrDefault(c => c.Id == run.Client).Name ?? run.Client;
            md.AppendLine(CultureInfo.InvariantCulture, $"{script}, {client}, over {run.BaseUrl}:").AppendLine();
            foreach (var step in run.Steps.Where(s => s.Status is "FAIL" or "warn"))
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"- {step.Status} {Inline(step.Name)}: {Inline(step.Detail)}");
            }

            md.AppendLine();
        }
    }

    private static string Cell(string text) => Inline(text).Replace("|", "\\|", StringComparison.Ordinal);

    private static string Inline(string text) => text.Replace('\n', ' ').Replace("<", "&lt;", StringComparison.Ordinal);
}
