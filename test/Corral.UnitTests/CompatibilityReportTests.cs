using System.Diagnostics;
using Corral.Api.Dispatch;
using Corral.Compatibility;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// docs/compatibility.md counts what the dispatcher really binds, and shows the suite's results as it ran; the suite's
/// own checks (test/conformance, Python) refuse what breaks the clients.
/// </summary>
public class CompatibilityReportTests
{
    private static readonly string Root = Corral.ModelGen.RepositoryRoot.Find(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("tests run inside the repository");

    private static Task<object?> Handler(CallContext context, object?[] arguments, CancellationToken cancellationToken) =>
        Task.FromResult<object?>(null);

    [Fact]
    public void A_message_counts_as_implemented_only_when_a_handler_is_bound()
    {
        var registry = new ApiRegistry();
        registry.Implement("VM.start", Handler);
        var vm = ClassCoverage.Of(XenApi.VM.Schema, registry);

        Assert.True(vm.Messages.Single(m => m.Message.Name == "start").Implemented);
        Assert.False(vm.Messages.Single(m => m.Message.Name == "clean_shutdown").Implemented);
        Assert.Equal(1, vm.Count().Implemented);
        Assert.Equal((1, vm.Count(MessageKind.Explicit).Total), vm.Count(MessageKind.Explicit));
        Assert.False(vm.Readable);
        var markdown = CompatibilityReport.Render(XenApi.AllClasses, registry, null, ".build/conformance/last-run.json");
        var total = XenApi.AllClasses.Where(c => c.Lifecycle != Lifecycle.Removed).SelectMany(c => c.Messages).Count(m => m.Lifecycle != Lifecycle.Removed);
        Assert.Contains($"**Messages implemented: 1 of {total} (", markdown, StringComparison.Ordinal);
        Assert.Contains("The suite has not run here", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_are_grouped_as_getters_setters_lookups_constructors_and_explicit_ones()
    {
        var vm = ClassCoverage.Of(XenApi.VM.Schema, new ApiRegistry());
        MessageKind KindOf(string name) => vm.Messages.Single(m => m.Message.Name == name).Kind;

        Assert.Equal(MessageKind.Getter, KindOf("get_power_state"));
        Assert.Equal(MessageKind.Setter, KindOf("add_to_other_config"));
        Assert.Equal(MessageKind.Lookup, KindOf("get_by_uuid"));
        Assert.Equal(MessageKind.Constructor, KindOf("create"));
        Assert.Equal(MessageKind.Explicit, KindOf("pool_migrate"));
        // message declares its own lookups: they still count as lookups.
        var message = ClassCoverage.Of(XenApi.AllClasses.Single(c => c.Name == "message"), new ApiRegistry());
        Assert.Equal(MessageKind.Lookup, message.Messages.Single(m => m.Message.Name == "get_all_records").Kind);
    }

    [Fact]
    public void The_agents_registry_is_built_through_its_own_registration_without_reading_the_pool_database()
    {
        var registry = AgentRegistry.Build();

        Assert.True(registry.Find("VM.start")?.IsImplemented);
        Assert.True(registry.Find("pool.join")?.IsImplemented);
        Assert.True(registry.Find("VM.get_power_state")?.IsImplemented);
        var database = RefusingProxy.Create<IPoolDatabase>("the pool database");
        Assert.Throws<InvalidOperationException>(() => database.IsUnavailable(new TimeoutException()));
    }

    [Fact]
    public void Each_client_shows_the_first_failure_of_its_last_run()
    {
        var results = SuiteResults.Parse("""
            {"base_url": "http://10.0.0.1", "started": "2026-12-01T10:00:00Z", "commit": "abc", "seconds": 90, "runs": [
              {"script": "connect_xencenter", "client": "jsonrpc", "base_url": "http://10.0.0.1", "passed": false, "seconds": 1,
               "steps": [{"status": "ok", "name": "1 login", "detail": ""},
                         {"status": "FAIL", "name": "10a software_version.product_brand", "detail": "product_brand 'Corral'"}]},
              {"script": "connect_xo", "client": "jsonrpc", "base_url": "http://10.0.0.1", "passed": true, "seconds": 1,
               "steps": [{"status": "warn", "name": "7 get_all_records", "detail": "MESSAGE_REMOVED"}]}
            ]}
            """);

        var markdown = CompatibilityReport.Render(XenApi.AllClasses, new ApiRegistry(), results, "last-run.json");

        Assert.Contains("**1 of 2 passed**", markdown, StringComparison.Ordinal);
        var row = markdown.Split('\n').Single(l => l.StartsWith("| JSON-RPC", StringComparison.Ordinal));
        Assert.Equal("| JSON-RPC 2.0 from Python (`urllib` + `json`) | **fails**: 10a software_version.product_brand | passes | not run | not run |", row);
        Assert.Contains("- FAIL 10a software_version.product_brand: product_brand 'Corral'", markdown, StringComparison.Ordinal);
        Assert.Contains("- warn 7 get_all_records: MESSAGE_REMOVED", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void The_suites_own_checks_refuse_what_breaks_the_clients()
    {
        var info = new ProcessStartInfo("/usr/bin/python3", ["-m", "unittest", "discover", "-s", Path.Combine(Root, "test", "conformance"), "-p", "test_*.py"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            Environment = { ["PYTHONDONTWRITEBYTECODE"] = "1" },
        };
        using var python = Process.Start(info)!;
        var output = python.StandardError.ReadToEndAsync();
        python.StandardOutput.ReadToEnd();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, output.Result);
    }
}
