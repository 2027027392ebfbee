namespace Corral.Packaging.Tests;

/// <summary>
/// The package's programs run from the unpacked package on a machine with no .NET: the directory of the dotnet on PATH
/// is hidden (an empty tmpfs over it, in a mount namespace of the command's own), so only a self-contained program runs.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class PackagedProgramsTests(DebianPackage package)
{
    // The settings a configured host has, the state in the test's own directories. 192.0.2.11 (TEST-NET-1) is no
    // address of this machine: an agent that got past its checks by mistake could bind neither its API nor its etcd member.
    private Dictionary<string, string> ConfiguredAgent(string state) => new(DebianPackage.ReadEnvironmentFile(Path.Combine(package.Root, "etc", "corral", "agent.conf")))
    {
        ["Corral__Agent__Address"] = "192.0.2.11",
        ["Corral__Etcd__Member__PeerUrl"] = "https://192.0.2.11:2380",
        ["Corral__Etcd__Member__ClientUrl"] = "https://192.0.2.11:2379",
        ["Corral__Agent__InitialRootPassword"] = "secret",
        ["Corral__Agent__StateDirectory"] = state,
        ["Corral__Etcd__Member__DataDirectory"] = Path.Combine(state, "etcd"),
        ["Corral__Qemu__RuntimeDirectory"] = Path.Combine(state, "run"),
    };

    [Theory]
    [InlineData("as shipped", "", "", "Corral:Agent:Address")]
    [InlineData("a host name as its address", "Corral__Agent__Address", "corral-host1", "Corral:Agent:Address")]
    [InlineData("a port that is no number", "Corral__Https__HttpsPort", "https", "Corral:Https:HttpsPort")]
    [InlineData("an etcd peer URL in the clear", "Corral__Etcd__Member__PeerUrl", "http://192.0.2.11:2380", "Corral:Etcd:Member:PeerUrl")]
    public async Task The_agent_refuses_a_bad_setting_at_start_naming_it_before_writing_anything(string configuration, string name, string value, string named)
    {
        var state = Path.Combine(package.Work, "state-" + Guid.NewGuid().ToString("N"));
        var environment = configuration == "as shipped"
            ? new Dictionary<string, string>(DebianPackage.ReadEnvironmentFile(Path.Combine(package.Root, "etc", "corral", "agent.conf")))
            {
                ["Corral__Agent__StateDirectory"] = state,
                ["Corral__Etcd__Member__DataDirectory"] = Path.Combine(state, "etcd"),
            }
            : ConfiguredAgent(state);
        if (name.Length > 0)
        {
            environment[name] = value;
        }

        var (code, output) = await RunWithoutDotnetAsync(Path.Combine(package.Root, "usr", "lib", "corral", "agent", "corral-agent"), environment);
        Assert.True(code == 78, $"exit status {code}, not 78 (EX_CONFIG), for {configuration}:\n{output}");
        var refusal = output.Split('\n').FirstOrDefault(l => l.Contains("Refusing to start: ", StringComparison.Ordinal));
        Assert.True(refusal?.Contains(named, StringComparison.Ordinal) == true, $"no refusal naming {named}:\n{output}");
        Assert.False(Directory.Exists(state), "the agent wrote its state directory before checking its settings");
    }

    [Fact]
    public async Task The_agent_with_good_settings_gets_past_their_check()
    {
        // The other side of the test above: good settings are not refused, and the agent goes on to make the host's
        // identity in its state directory, which here cannot be made (under a file), so it ends there.
        var environment = ConfiguredAgent("/dev/null/corral-state");
        var (code, output) = await RunWithoutDotnetAsync(Path.Combine(package.Root, "usr", "lib", "corral", "agent", "corral-agent"), environment);
        Assert.True(code is not (0 or 78 or 90 or 91), $"exit status {code}:\n{output}");
        Assert.DoesNotContain("Refusing to start", output, StringComparison.Ordinal);
        Assert.Contains("/dev/null/corral-state", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_fence_daemon_refuses_a_relative_socket_path_at_start_naming_it()
    {
        var environment = DebianPackage.ReadEnvironmentFile(Path.Combine(package.Root, "etc", "corral", "fenced.conf"));
        environment["Corral__Fence__Socket"] = "fenced.sock";
        var (code, output) = await RunWithoutDotnetAsync(Path.Combine(package.Root, "usr", "lib", "corral", "fenced", "corral-fenced"), environment);
        Assert.True(code == 78, $"exit status {code}, not 78:\n{output}");
        Assert.Contains("Corral:Fence:Socket must be an absolute path", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Xe_runs_from_usr_bin()
    {
        var (code, output) = await RunWithoutDotnetAsync(Path.Combine(package.Root, "usr", "bin", "xe"), new Dictionary<string, string>(), null, "help");
        Assert.True(code == 0, output);
        Assert.Contains("xe <command>", output, StringComparison.Ordinal);
    }

    /// <summary>Runs a program with only the environment given (and systemd's PATH), .NET's install hidden.</summary>
    private static Task<(int Code, string Output)> RunWithoutDotnetAsync(string program, IReadOnlyDictionary<string, string> environment,
        TimeSpan? timeout = null, params string[] args)
    {
        var dotnet = DotnetInstallation();
        var env = new Dictionary<string, string>(environment) { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["DOTNET_HIDDEN"] = dotnet };
        const string Script = """
            mount -t tmpfs corral-no-dotnet "$DOTNET_HIDDEN" || exit 90
            if dotnet --info >/dev/null 2>&1; then echo ".NET is still reachable"; exit 91; fi
            unset DOTNET_HIDDEN
            exec "$@"
            """;
        return Processes.RunAsync("unshare", ["--mount", "--propagation", "private", "sh", "-c", Script, "sh", program, .. args], env,
            clearEnvironment: true, timeout: timeout ?? TimeSpan.FromSeconds(30));
    }

    /// <summary>The directory of the dotnet this test runs with (its host, on PATH, links to it).</summary>
    private static string DotnetInstallation()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = new FileInfo(Path.Combine(dir, "dotnet"));
            if (candidate.Exists)
            {
                var target = candidate.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? candidate.FullName;
                return Path.GetDirectoryName(target)!;
            }
        }

        return Path.GetDirectoryName(Environment.ProcessPath)!;
    }
}
