using Xunit;

namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// Every scenario file under HaSimulation/Scenarios, run under several seeds (message delays, election timeouts,
/// timer phases), each run checking the invariants at every step and the scenario's expected outcome; seed 0 must
/// also reproduce the scenario's golden trace (<c>.trace</c> next to it; <c>CORRAL_UPDATE_TRACES=1</c> rewrites them
/// after a deliberate change — review the diff).
/// </summary>
public sealed class HaScenarioTests
{
    public static string Directory => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../HaSimulation/Scenarios"));

    public static TheoryData<string, int> Runs()
    {
        var runs = new TheoryData<string, int>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.scenario").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            for (var seed = 0; seed < Load(name).Seeds; seed++)
            {
                runs.Add(name, seed);
            }
        }

        return runs;
    }

    private static Scenario Load(string name) => Scenario.Parse(name, File.ReadAllText(Path.Combine(Directory, name + ".scenario")));

    [Theory]
    [MemberData(nameof(Runs))]
    public void Scenario_keeps_its_invariants_and_outcome(string name, int seed)
    {
        var simulation = new Simulation(Load(name), seed);
        simulation.Run();
        var failures = ScenarioOutcome.Check(simulation);
        Assert.True(failures.Count == 0,
            $"{name} (seed {seed}):\n  {string.Join("\n  ", failures)}\ntrace:\n{string.Join('\n', simulation.Trace)}");

        if (seed == 0)
        {
            var golden = Path.Combine(Directory, name + ".trace");
            var trace = string.Join('\n', simulation.Trace) + "\n";
            if (Environment.GetEnvironmentVariable("CORRAL_UPDATE_TRACES") == "1")
            {
                File.WriteAllText(golden, trace);
            }

            Assert.True(File.Exists(golden), $"{golden} is missing: run with CORRAL_UPDATE_TRACES=1 to record it, then review it");

            Assert.Equal(File.ReadAllText(golden), trace);
        }
    }

    [Fact]
    public void The_suite_runs_hundreds_of_scenarios()
    {
        Assert.True(Runs().Count >= 300, $"only {Runs().Count} scenario runs");
    }
}
