using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// A private lab for one test class, driven through <c>./lab</c> and <c>xe</c> exactly as a user would, with names of
/// its own (namespaces, bridges, directories, HOME for ~/.xe) so that it never touches a lab someone else runs. Torn
/// down by <see cref="DisposeAsync"/> whatever the test did; the agents' logs are kept in /tmp for a failure's reader.
/// </summary>
public sealed class LabSession : IAsyncDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-labtest-home-").FullName;
    private readonly Dictionary<string, string> _env;
    private readonly string _name;
    private static bool s_built;

    /// <param name="name">Names the copies of the lab's logs the session leaves in the temporary directory.</param>
    /// <param name="slot">Makes the lab's namespaces, links and addresses its own among the labs of a test run.</param>
    /// <param name="settings">More of the lab's environment (<c>CORRAL_LAB_*</c>) for <c>./lab up</c> and what follows.</param>
    public LabSession(string name, int slot, IReadOnlyDictionary<string, string>? settings = null)
    {
        _name = name;
        var id = ((Environment.ProcessId % 100 * 10) + slot).ToString(System.Globalization.CultureInfo.InvariantCulture);
        _env = new Dictionary<string, string>
        {
            ["HOME"] = _home,
            ["CORRAL_LAB_DIR"] = Path.Combine(_home, "lab"),
            ["CORRAL_LAB_RUN"] = Path.Combine(_home, "run"),
            ["CORRAL_LAB_NS_PREFIX"] = $"corral-t{id}-h",
            ["CORRAL_LAB_VETH_PREFIX"] = $"t{id}",
            ["CORRAL_LAB_BRIDGE"] = $"ctv{id}",
            ["CORRAL_LAB_MGMT_BRIDGE"] = $"ctm{id}",
            ["CORRAL_LAB_STORAGE_BRIDGE"] = $"cts{id}",
            ["CORRAL_LAB_STORAGE_NS"] = $"corral-t{id}-storage",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            _env[key] = value;
        }
    }

    /// <summary>The password of the lab's root (and of its directory's people).</summary>
    public string Password => _env.GetValueOrDefault("CORRAL_LAB_PASSWORD", "corral");

    public static string Repo => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));

    /// <summary>The hosts' management addresses, lab-host1 first.</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = [];

    public string LabDirectory => Path.Combine(_home, "lab");

    /// <summary>The network namespace of the lab's storage server (when its shared SR is on NFS or iSCSI).</summary>
    public string StorageNamespace => _env["CORRAL_LAB_STORAGE_NS"];

    /// <summary>
    /// Where an administrator drops ISOs for the pool's ISO library: the storage server's SMB share (its directory on
    /// the server) when the lab has one, else the library's directory every host sees.
    /// </summary>
    public string IsoLibraryDirectory =>
        Directory.Exists(Path.Combine(LabDirectory, "storage", "isos")) ? Path.Combine(LabDirectory, "storage", "isos") : Path.Combine(LabDirectory, "iso");

    /// <summary>The storage server's address on the lab's storage network.</summary>
    public string StorageAddress => File.ReadAllText(Path.Combine(RunDirectory, "storage-subnet")).Trim() + ".2";

    /// <summary>
    /// The file holding a VDI of the shared SR, as the storage sees it: in the directory of a <c>file</c> SR, or in the
    /// SR's directory on the storage server's NFS export.
    /// </summary>
    public string VdiFile(string vdi)
    {
        var name = vdi + ".qcow2";
        var candidates = new[] { Path.Combine(LabDirectory, "shared"), Path.Combine(LabDirectory, "storage", "nfs") }
            .Where(Directory.Exists).SelectMany(d => Directory.EnumerateFiles(d, name, SearchOption.AllDirectories)).ToList();
        Assert.True(candidates.Count == 1, $"{name}: {candidates.Count} files on the lab's shared storage");
        return candidates[0];
    }

    /// <summary>Where the hosts' runtime directories are (hostN/vms/&lt;vm uuid&gt;/: pidfile, monitor, console log).</summary>
    public string RunDirectory => Path.Combine(_home, "run");

    /// <summary>The network namespace of lab host <paramref name="host"/> (1-3).</summary>
    public string Namespace(int host) => _env["CORRAL_LAB_NS_PREFIX"] + host.ToString(CultureInfo.InvariantCulture);

    public async Task UpAsync()
    {
        // The first lab of a test run builds Corral (./lab up publishes the agent and xe); the others use that build.
        if (s_built)
        {
            _env["CORRAL_LAB_BUILT"] = "1";
        }

        var (code, up) = await RunAsync(Path.Combine(Repo, "lab"), "up");
        Assert.True(code == 0, up);
        s_built = true;
        var hostLine = up.Split('\n').First(l => l.Contains("Hosts:", StringComparison.Ordinal));
        Addresses = hostLine.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => w.Count(c => c == '.') == 3).ToList();
        Assert.Equal(3, Addresses.Count);
    }

    public async Task LabAsync(params string[] args)
    {
        var (code, output) = await RunAsync(Path.Combine(Repo, "lab"), args);
        Assert.True(code == 0, $"./lab {string.Join(' ', args)} failed: {output}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var log in Directory.Exists(LabDirectory) ? Directory.GetFiles(LabDirectory, "*.log", SearchOption.AllDirectories) : [])
            {
                var name = Path.GetRelativePath(LabDirectory, log).Replace('/', '-');
                File.Copy(log, Path.Combine(Path.GetTempPath(), $"corral-{_name}-{name}"), overwrite: true);
            }

            // The guests' serial consoles too (what a guest said before it hung is often the whole story).
            var run = Path.Combine(_home, "run");
            foreach (var log in Directory.Exists(run) ? Directory.GetFiles(run, "console.log", SearchOption.AllDirectories) : [])
            {
                var name = Path.GetRelativePath(run, log).Replace('/', '-');
                File.Copy(log, Path.Combine(Path.GetTempPath(), $"corral-{_name}-{name}"), overwrite: true);
            }

            // What QEMU says of each guest still running, and what each host's links counted.
            foreach (var monitor in Directory.Exists(run) ? Directory.GetFiles(run, "monitor.sock", SearchOption.AllDirectories) : [])
            {
                var name = Path.GetRelativePath(run, Path.GetDirectoryName(monitor)!).Replace('/', '-');
                await GuestSnapshot.WriteAsync(monitor, Path.Combine(Path.GetTempPath(), $"corral-{_name}-{name}-monitor.txt"));
            }

            // What the pool database says of its tasks, VMs and storage: an operation that never ended shows here.
            await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), $"corral-{_name}-pool.txt"), await PoolStateAsync());

            for (var host = 1; host <= 3; host++)
            {
                var (_, counters) = await RunAsync("ip", "-n", _env["CORRAL_LAB_NS_PREFIX"] + host, "-s", "link", "show");
                await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), $"corral-{_name}-host{host}-links.txt"), counters);
            }

            await RunAsync(Path.Combine(Repo, "lab"), "down");
            // The lab must leave nothing behind: no namespace and no link of its own.
            var (_, namespaces) = await RunAsync("ip", "netns", "list");
            Assert.DoesNotContain(_env["CORRAL_LAB_NS_PREFIX"], namespaces, StringComparison.Ordinal);
            Assert.DoesNotContain(_env["CORRAL_LAB_STORAGE_NS"], namespaces, StringComparison.Ordinal);
            var (_, links) = await RunAsync("ip", "-o", "link", "show");
            Assert.DoesNotContain(_env["CORRAL_LAB_MGMT_BRIDGE"] + ":", links, StringComparison.Ordinal);
            Assert.DoesNotContain(_env["CORRAL_LAB_BRIDGE"] + ":", links, StringComparison.Ordinal);
            Assert.DoesNotContain(_env["CORRAL_LAB_STORAGE_BRIDGE"] + ":", links, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(_home, recursive: true);
        }
    }

    private async Task<string> PoolStateAsync()
    {
        var parts = new List<string>();
        foreach (var command in new[]
        {
            new[] { "pool-list", "params=master,ha-enabled,other-config" },
            ["host-list", "params=uuid,name-label,enabled,host-metrics-live,software-version"],
            ["task-list", "params=all"],
            ["vm-list", "is-control-domain=false", "params=uuid,name-label,power-state,resident-on,scheduled-to-be-resident-on,current-operations"],
            ["pbd-list", "params=host-uuid,sr-uuid,currently-attached"],
        })
        {
            // Bounded: a pool that no longer answers is what a failed test may have left.
            var (code, output) = await RunAsync("timeout", ["30", Path.Combine(Repo, ".build/xe/xe"), .. command]);
            parts.Add($"$ xe {string.Join(' ', command)} (exit {code})\n{output}");
        }

        return string.Join("\n\n", parts);
    }

    public async Task<(int Code, string Output)> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in _env)
        {
            info.Environment[k] = v;
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, (await stdout).Trim() + (await stderr is { Length: > 0 } e ? "\n" + e.Trim() : ""));
    }

    /// <summary>Runs xe (as configured by the lab in this session's ~/.xe) and fails the test if it fails.</summary>
    public async Task<string> Xe(params string[] args)
    {
        var (code, output) = await TryXe(args);
        Assert.True(code == 0, $"xe {string.Join(' ', args)} failed: {output}");
        return output;
    }

    public Task<(int Code, string Output)> TryXe(params string[] args) => RunAsync(Path.Combine(Repo, ".build/xe/xe"), args);

    /// <summary>
    /// etcdctl against lab-host<paramref name="host"/>'s member at its management address, with that host's certificate
    /// of its pool's CA: the members serve TLS only, to clients with such a certificate.
    /// </summary>
    public Task<(int Code, string Output)> Etcdctl(int host, params string[] args)
    {
        var tls = Path.Combine(LabDirectory, $"host{host}", "state", "etcd-tls");
        return RunAsync("etcdctl", [$"--endpoints=https://{Addresses[host - 1]}:2379", $"--cacert={tls}/pool-ca.pem", $"--cert={tls}/host.pem",
            $"--key={tls}/host.key", .. args]);
    }

    /// <summary>xe against one host (<c>-s address</c>) rather than the one in ~/.xe.</summary>
    public static string[] On(string address, params string[] args) => ["-s", address, .. args];

    public static async Task<bool> Ping(string ip)
    {
        using var p = Process.Start(new ProcessStartInfo("ping", ["-c", "1", "-W", "1", ip]) { RedirectStandardOutput = true })!;
        await p.WaitForExitAsync();
        return p.ExitCode == 0;
    }

    public static async Task Eventually(Func<Task<bool>> probe, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await probe())
        {
            Assert.True(sw.Elapsed < timeout, "timed out waiting for " + what);
            await Task.Delay(500);
        }
    }

    /// <summary>How long each agent's log is now (the logs of restarted agents go on in the same files).</summary>
    public Dictionary<string, long> AgentLogMarks() =>
        Directory.GetFiles(LabDirectory, "agent-host*.log").ToDictionary(f => f, f => new FileInfo(f).Length);

    /// <summary>What the agents logged since <paramref name="marks"/>, each line prefixed with its log's name; only the lines <paramref name="keep"/> keeps.</summary>
    public string AgentLogsSince(Dictionary<string, long> marks, Func<string, bool>? keep = null) => string.Join('\n', Directory.GetFiles(LabDirectory, "agent-host*.log").Order(StringComparer.Ordinal).Select(f =>
    {
        using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(marks.GetValueOrDefault(f), SeekOrigin.Begin);
        var lines = new StreamReader(stream).ReadToEnd().Split('\n').Where(l => l.Length > 0 && (keep is null || keep(l)));
        return string.Join('\n', lines.Select(l => $"{Path.GetFileNameWithoutExtension(f)}: {l}"));
    }));

    /// <summary>The lab hosts (1-3) on which a QEMU process for the VM runs, by the pidfiles in their runtime directories.</summary>
    public List<int> RunningCopies(string vm)
    {
        var hosts = new List<int>();
        for (var host = 1; host <= 3; host++)
        {
            var pidFile = Path.Combine(LabDirectory, "..", "run", $"host{host}", "vms", vm, "qemu.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid)
                && File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains(vm, StringComparison.Ordinal))
            {
                hosts.Add(host);
            }
        }

        return hosts;
    }

    /// <summary>The command line of the VM's QEMU on lab host <paramref name="host"/>; empty when none runs it there.</summary>
    public string[] QemuArguments(int host, string vm)
    {
        var pidFile = Path.Combine(LabDirectory, "..", "run", $"host{host}", "vms", vm, "qemu.pid");
        try
        {
            return File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid)
                   && File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is var args && args.Contains(vm)
                ? args
                : [];
        }
        catch (IOException)
        {
            return []; // the process went between two reads
        }
    }

    /// <summary>
    /// The processes that have the disk image open, by /proc/*/fd: the disk's side of "never two copies", which does not
    /// depend on pidfiles.
    /// </summary>
    public static List<int> DiskHolders(string image)
    {
        var holders = new List<int>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                if (Directory.EnumerateFileSystemEntries(Path.Combine(proc, "fd")).Any(fd => new FileInfo(fd).LinkTarget == image))
                {
                    holders.Add(pid);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended while being read.
            }
        }

        return holders;
    }

    /// <summary>The (halted) VM's image is consistent and its guest's write sequence has no gap and no repeat.</summary>
    public async Task AssertWriteSequenceIntactAsync(string image)
    {
        var (checkCode, check) = await RunAsync("qemu-img", "check", image);
        Assert.True(checkCode == 0, check);
        var sequence = await ReadSequenceAsync(image);
        Assert.True(sequence.Count > 50, $"only {sequence.Count} writes");
        Assert.Equal(Enumerable.Range(1, sequence.Count).Select(i => (long)i), sequence);
    }

    /// <summary>Reads /data/seq.log from the guest's ext4 data partition in the (halted) VM's image.</summary>
    private async Task<List<long>> ReadSequenceAsync(string image)
    {
        var raw = Path.Combine(LabDirectory, "seq-check.raw");
        var partition = Path.Combine(LabDirectory, "seq-check.ext4");
        try
        {
            Assert.Equal(0, (await RunAsync("qemu-img", "convert", "-O", "raw", image, raw)).Code);
            // The data partition starts at sector 100352 (guest/build-image.sh).
            Assert.Equal(0, (await RunAsync("dd", $"if={raw}", $"of={partition}", "bs=512", "skip=100352", "status=none")).Code);
            var (code, text) = await RunAsync("debugfs", "-R", "cat /seq.log", partition);
            Assert.Equal(0, code);
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.All(char.IsAsciiDigit))
                .Select(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList();
        }
        finally
        {
            File.Delete(raw);
            File.Delete(partition);
        }
    }
}
