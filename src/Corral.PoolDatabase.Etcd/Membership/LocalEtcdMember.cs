using System.Diagnostics;
using System.Globalization;
using Corral.Platform;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging;

namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>How a member starts: which of etcd's bootstrap modes.</summary>
public enum EtcdStartMode
{
    /// <summary>A new one-member cluster (a host that is its own pool).</summary>
    NewCluster,

    /// <summary>A member added to a running cluster (<c>--initial-cluster-state existing</c>), empty data directory.</summary>
    JoinExisting,

    /// <summary>The data directory decides (a restart).</summary>
    Resume,
}

/// <summary>
/// Runs this host's etcd member as a process of its own: it outlives the agent (as QEMU does), is found again
/// through its pidfile, and writes its log next to its data directory. With https URLs the member serves TLS on both
/// ports with this host's certificate (<paramref name="tls"/>) and takes only clients and peers whose certificate the
/// pool's CA signed.
/// </summary>
public sealed class LocalEtcdMember(EtcdMemberOptions options, ILogger logger, EtcdTlsFiles? tls = null)
{
    /// <summary>etcd's <c>--max-request-bytes</c> for the pool database's members.</summary>
    public const int MaxRequestBytes = 10 * 1024 * 1024;

    public EtcdMemberOptions Options => options;

    private bool UsesTls => options.ClientUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
        || options.PeerUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public bool HasData => Directory.Exists(Path.Combine(options.DataDirectory, "member"));

    /// <summary>The member's pid if its process runs (checked against /proc, so a reused pid is not taken for it).</summary>
    public int? RunningPid()
    {
        if (!File.Exists(options.PidFile) || !int.TryParse(File.ReadAllText(options.PidFile).Trim(), CultureInfo.InvariantCulture, out var pid))
        {
            return null;
        }

        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            var state = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name: state, ppid, pgrp, session, tty, tpgid, flags.
            var fields = state[(state.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var zombie = fields.Length > 0 && fields[0] == "Z";
            const uint kernelThread = 0x00200000;
            var kthread = fields.Length > 6 && uint.TryParse(fields[6], CultureInfo.InvariantCulture, out var flags) && (flags & kernelThread) != 0;
            // While the shell execs setsid and setsid execs etcd, the kernel may show an empty command line for a moment:
            // the process is there, and it is ours (the pidfile was written for it a moment ago); a kernel thread that
            // was given a stale pidfile's number is not.
            return !zombie && !kthread && (cmdline.Length == 0 || cmdline.Contains(options.DataDirectory, StringComparison.Ordinal)) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public async Task StartAsync(EtcdStartMode mode, string initialCluster, CancellationToken cancellationToken)
    {
        if (RunningPid() is { } running)
        {
            throw new InvalidOperationException($"etcd member {options.Name} already runs (pid {running})");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.DataDirectory))!);
        var arguments = new List<string>
        {
            "--name", options.Name,
            "--data-dir", options.DataDirectory,
            "--listen-client-urls", options.EffectiveListenClientUrls,
            "--advertise-client-urls", options.ClientUrl,
            "--listen-peer-urls", options.PeerUrl,
            "--initial-advertise-peer-urls", options.PeerUrl,
            // A member back from a partition has run up its raft term alone; without pre-vote it would depose the
            // working leader on return, and the election stalls every host's lease keepalives (with HA on, healthy
            // hosts would fence their VMs). etcd 3.4 leaves pre-vote off by default.
            "--pre-vote",
            // History kept for HistoryRetention, then compacted away: without it the database grows with every write
            // (heartbeats and metrics included) until etcd's quota stops the pool.
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", $"{(long)options.HistoryRetention.TotalMinutes}m",
            "--quota-backend-bytes", options.QuotaBytes.ToString(CultureInfo.InvariantCulture),
            // A UEFI VM's record carries its variable store (OVMF's 540 KiB, 720 KiB as base64), and a snapshot writes the
            // VM and its snapshot in one transaction: past etcd's default 1.5 MiB. 10 MiB is the most etcd advises.
            "--max-request-bytes", MaxRequestBytes.ToString(CultureInfo.InvariantCulture),
            "--heartbeat-interval", ((long)options.HeartbeatInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            "--election-timeout", ((long)options.ElectionTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        };
        arguments.AddRange(TlsArguments());
        switch (mode)
        {
            case EtcdStartMode.NewCluster:
                // A token of its own, so that two new pools can never take each other's members for their own.
                arguments.AddRange(["--initial-cluster", $"{options.Name}={options.PeerUrl}", "--initial-cluster-state", "new",
                    "--initial-cluster-token", "corral-" + Guid.NewGuid().ToString("N")]);
                break;
            case EtcdStartMode.JoinExisting:
                arguments.AddRange(["--initial-cluster", initialCluster, "--initial-cluster-state", "existing"]);
                break;
            case EtcdStartMode.Resume:
                break;
        }

        // Through a shell only for the redirection; setsid keeps the member out of the agent's signals, and exec keeps
        // the pid the one recorded.
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec setsid \"$0\" \"$@\" >>\"$CORRAL_ETCD_LOG\" 2>&1 </dev/null");
        info.ArgumentList.Add(options.Executable);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["CORRAL_ETCD_LOG"] = options.LogFile;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start etcd");
        await File.WriteAllTextAsync(options.PidFile, process.Id.ToString(CultureInfo.InvariantCulture), cancellationToken);
        logger.LogInformation("Started etcd member {Name} ({Mode}), pid {Pid}", options.Name, mode, process.Id);
    }

    /// <summary>
    /// etcd's TLS flags: this host's certificate on the client and peer ports, and only certificates of the pool's CA
    /// accepted on either (a client without one is refused in the TLS handshake, before any request).
    /// </summary>
    private IEnumerable<string> TlsArguments()
    {
        if (!UsesTls)
        {
            return [];
        }

        if (tls is null || !tls.Exists)
        {
            throw new InvalidOperationException($"etcd member {options.Name} serves TLS but this host has no certificate of its pool's CA"
                + (tls is null ? "" : $" in {tls.Directory}"));
        }

        tls.EnsureMemberFiles(TimeProvider.System);
        return tls.MemberArguments();
    }

    /// <summary>A client for the member's HTTP endpoints, with the certificate files as they are now (a join replaces them).</summary>
    private HttpClient CreateHttp() => new(UsesTls && tls is not null ? tls.CreateHttpHandler() : new SocketsHttpHandler())
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    /// <summary>Waits until the member serves HTTP (a learner cannot answer reads, so this is as far as it can go).</summary>
    public async Task WaitServingAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        await WaitAsync("/version", _ => true, timeout, cancellationToken);

    /// <summary>Waits until the member reports the cluster healthy (it has a leader and quorum).</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        await WaitAsync("/health", body => body.Contains("\"true\"", StringComparison.Ordinal), timeout, cancellationToken);

    private async Task WaitAsync(string path, Func<string, bool> good, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var url = new Uri(new Uri(options.ClientUrl), path);
        using var http = CreateHttp();
        while (true)
        {
            try
            {
                var body = await http.GetStringAsync(url, cancellationToken);
                if (good(body))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }

            if (RunningPid() is null)
            {
                throw new InvalidOperationException($"etcd member {options.Name} exited (see {options.LogFile}): {LastLogLines(5)}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"etcd member {options.Name} did not answer {path} within {timeout.TotalSeconds:0} s (see {options.LogFile})");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    /// <summary>The last lines etcd wrote, for an error that says why it stopped.</summary>
    public string LastLogLines(int count)
    {
        try
        {
            var lines = File.ReadAllLines(options.LogFile);
            return string.Join(" | ", lines.Skip(Math.Max(0, lines.Length - count)));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>Stops the member: SIGTERM, then SIGKILL after a grace period.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (RunningPid() is not { } pid)
        {
            return;
        }

        var id = pid.ToString(CultureInfo.InvariantCulture);
        await CommandRunner.RunAsync("kill", ["-TERM", id], cancellationToken);
        for (var i = 0; i < 100 && RunningPid() is not null; i++)
        {
            await Task.Delay(100, cancellationToken);
        }

        if (RunningPid() is not null)
        {
            await CommandRunner.RunAsync("kill", ["-KILL", id], cancellationToken);
        }

        logger.LogInformation("Stopped etcd member {Name} (pid {Pid})", options.Name, pid);
    }

    /// <summary>Deletes the data directory: only for a member's own failed attempt at joining, never a pool's data.</summary>
    public void DeleteData()
    {
        if (Directory.Exists(options.DataDirectory))
        {
            Directory.Delete(options.DataDirectory, recursive: true);
        }
    }

    /// <summary>
    /// Sets the member's data aside so the member can start afresh; the last generation is kept (<c>.previous</c>), as
    /// it may be the only copy of a pool database someone wants back.
    /// </summary>
    public void SetDataAside()
    {
        if (!Directory.Exists(options.DataDirectory))
        {
            return;
        }

        var aside = $"{options.DataDirectory.TrimEnd('/')}.previous";
        if (Directory.Exists(aside))
        {
            Directory.Delete(aside, recursive: true);
        }

        Directory.Move(options.DataDirectory, aside);
        logger.LogInformation("Set the old etcd data aside in {Path}", aside);
    }
}
