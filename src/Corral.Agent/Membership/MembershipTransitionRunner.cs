using Corral.Api.Client;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Membership;

/// <summary>
/// Runs between two generations of the agent, when no service uses the pool database: finishes a pending
/// <see cref="MembershipTransition"/>, then makes sure this host's etcd member runs as its membership says.
/// </summary>
public sealed class MembershipTransitionRunner(
    EtcdMemberOptions memberOptions,
    IReadOnlyList<string> localEndpoints,
    ApiOptions apiOptions,
    EtcdTlsFiles tls,
    ILogger logger)
{
    private static readonly EventId PoolCaCreated = new(1560, "PoolCaCreated");
    private static readonly EventId PoolCaInstalled = new(1561, "PoolCaInstalled");
    private static readonly EventId PoolCaForgotten = new(1562, "PoolCaForgotten");

    private readonly LocalEtcdMember _member = new(memberOptions, logger, tls);

    /// <summary>This host's pool CA and etcd certificate.</summary>
    public EtcdTlsFiles Tls => tls;

    /// <summary>This host's etcd member's settings.</summary>
    public EtcdMemberOptions MemberOptions => memberOptions;

    public string TransitionFile => memberOptions.DataDirectory.TrimEnd('/') + ".transition.json";

    /// <summary>The endpoints this generation's agent should use.</summary>
    public IReadOnlyList<string> Endpoints =>
        EtcdMembership.Load(memberOptions.MembershipFile) is { Role: EtcdRole.Learner or EtcdRole.Client } m ? m.Endpoints : localEndpoints;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (MembershipTransition.Load(TransitionFile) is { } transition)
        {
            logger.LogInformation("Membership change {Change}: resuming at stage {Stage}", transition.Change, transition.Stage);
            var next = transition.Change switch
            {
                MembershipChange.Join => await JoinStepAsync(transition, cancellationToken),
                MembershipChange.Leave => await LeaveStepAsync(transition, cancellationToken),
                MembershipChange.ForceNewCluster => await ForceNewClusterStepAsync(transition, cancellationToken),
                _ => null,
            };
            if (next is null)
            {
                File.Delete(TransitionFile);
                logger.LogInformation("Membership change {Change} done", transition.Change);
            }
            else
            {
                next.Save(TransitionFile);
            }
        }

        await EnsureMemberRunningAsync(cancellationToken);
    }

    private async Task EnsureMemberRunningAsync(CancellationToken cancellationToken)
    {
        var membership = EtcdMembership.Load(memberOptions.MembershipFile);
        if (membership?.Role == EtcdRole.Client)
        {
            await _member.StopAsync(cancellationToken);
            return;
        }

        if (_member.RunningPid() is { } pid)
        {
            logger.LogInformation("etcd member {Name} already runs (pid {Pid})", memberOptions.Name, pid);
            return;
        }

        if (membership is null && !_member.HasData)
        {
            // A host on its own: a pool of one, which other hosts may join, with a CA of its own.
            CreatePoolCa("a new pool");
            await _member.StartAsync(EtcdStartMode.NewCluster, "", cancellationToken);
            new EtcdMembership(EtcdRole.Voter, localEndpoints, $"{memberOptions.Name}={memberOptions.PeerUrl}", 0).Save(memberOptions.MembershipFile);
            await _member.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
            return;
        }

        if (!tls.Exists)
        {
            // Only a pool of one can take a new CA: other members would not know it (see docs/security.md).
            CreatePoolCa("this host had no certificate of its pool's CA");
        }

        await _member.StartAsync(EtcdStartMode.Resume, "", cancellationToken);
    }

    private void CreatePoolCa(string why)
    {
        tls.CreatePool(memberOptions.Name, PoolCertificateAuthority.NamesFor(memberOptions.Name, memberOptions.PeerUrl, memberOptions.ClientUrl),
            TimeProvider.System);
        logger.LogInformation(PoolCaCreated, "Made a new pool CA and this host's etcd certificate in {Directory} ({Why})", tls.Directory, why);
    }

    private async Task<MembershipTransition?> JoinStepAsync(MembershipTransition t, CancellationToken cancellationToken)
    {
        switch (t.Stage)
        {
            case 0:
                await _member.StopAsync(cancellationToken);
                _member.SetDataAside();
                File.Delete(memberOptions.MembershipFile);
                if (t.Tls is { } material)
                {
                    // The member is stopped: from here on it serves the new pool's certificate, and trusts its CA alone.
                    tls.Write(material);
                    logger.LogInformation(PoolCaInstalled, "Installed the pool's CA and this host's etcd certificate from the master in {Directory}", tls.Directory);
                }

                return t with { Stage = 1 };
            case 1:
                if (t.Role != EtcdRole.Client)
                {
                    if (_member.RunningPid() is null)
                    {
                        // Whatever is in the data directory now is a failed attempt at this join: start it clean.
                        _member.DeleteData();
                        await _member.StartAsync(EtcdStartMode.JoinExisting, t.InitialCluster, cancellationToken);
                    }

                    await _member.WaitServingAsync(TimeSpan.FromSeconds(60), cancellationToken);
                }

                return t with { Stage = 2 };
            case 2:
                if (t.Role == EtcdRole.Voter)
                {
                    await PromoteThroughMasterAsync(t, cancellationToken);
                }

                return t with { Stage = 3 };
            default:
                var endpoints = t.Role == EtcdRole.Voter ? localEndpoints : t.Endpoints ?? [];
                new EtcdMembership(t.Role, endpoints, t.InitialCluster, t.MemberId).Save(memberOptions.MembershipFile);
                new LocalCredentials(Options.Create(apiOptions)).Remember(null, t.PoolSecret);
                TrustFor(t);
                return null;
        }
    }

    /// <summary>The pool certificates this host checks other hosts against: those the join brought, else those it kept.</summary>
    private PoolCertificateTrust TrustFor(MembershipTransition t)
    {
        var trust = new PoolCertificateTrust(Options.Create(apiOptions), NullLogger<PoolCertificateTrust>.Instance);
        if (t.PoolCertificates is { Count: > 0 } certificates)
        {
            trust.Replace(certificates);
        }

        return trust;
    }

    private async Task PromoteThroughMasterAsync(MembershipTransition t, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        var remote = new RemoteHosts(Options.Create(apiOptions), TrustFor(t), verification: new TlsVerification(Options.Create(apiOptions), TimeProvider.System,
            NullLogger<TlsVerification>.Instance));
        while (true)
        {
            try
            {
                using var client = await remote.ConnectAsync(t.MasterAddress, cancellationToken);
                var session = (string)(await client.CallAsync("session.slave_login", ["", t.PoolSecret], cancellationToken))!;
                await client.CallAsync("pool.corral_promote_member", [session, t.MemberId.ToString("x", System.Globalization.CultureInfo.InvariantCulture)],
                    cancellationToken);
                return;
            }
            catch (Exception ex) when (ex is XenApiTransportException or Corral.Model.XenApiException && DateTime.UtcNow < deadline)
            {
                logger.LogWarning("Promotion through the master at {Master} failed ({Reason}); retrying", t.MasterAddress, ex.Message);
                await Task.Delay(1000, cancellationToken);
            }
        }
    }

    private async Task<MembershipTransition?> LeaveStepAsync(MembershipTransition t, CancellationToken cancellationToken)
    {
        switch (t.Stage)
        {
            case 0:
                var membership = EtcdMembership.Load(memberOptions.MembershipFile);
                if (membership is not null && membership.Role != EtcdRole.Client)
                {
                    try
                    {
                        using var connection = new EtcdConnection(membership.Endpoints, tls);
                        var admin = new EtcdClusterAdmin(connection.Client, logger);
                        var me = (await admin.ListAsync(cancellationToken)).FirstOrDefault(m => m.PeerUrls.Contains(memberOptions.PeerUrl));
                        if (me is not null)
                        {
                            await admin.RemoveAsync(me.Id, cancellationToken);
                        }
                    }
                    catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                    {
                        // The pool already forgot this host; a member left behind only costs the others a peer to dial.
                        logger.LogWarning(ex, "Could not remove this host's etcd member from the pool's cluster");
                    }
                }

                return t with { Stage = 1 };
            default:
                await _member.StopAsync(cancellationToken);
                _member.SetDataAside();
                File.Delete(memberOptions.MembershipFile);
                var credentials = Path.Combine(apiOptions.StateDirectory, "credentials.json");
                File.Delete(credentials);
                // The pool's CA goes with the pool: the host starts a pool of its own, with a CA of its own.
                tls.Delete();
                logger.LogInformation(PoolCaForgotten, "Forgot the pool's CA and this host's etcd certificate (left the pool)");
                return null;
        }
    }

    /// <summary>
    /// The pool starts again from this host's copy of its database (<see cref="StandaloneRestore"/>): a snapshot of the
    /// member taken, the member stopped, the snapshot (or its database file) restored into a one-member cluster of its
    /// own and put in place, the member started on it. Each stage may be done again after a crash: the restore is staged
    /// anew, and put in place only once.
    /// </summary>
    private async Task<MembershipTransition?> ForceNewClusterStepAsync(MembershipTransition t, CancellationToken cancellationToken)
    {
        switch (t.Stage)
        {
            case 0:
                if (_member.RunningPid() is not null)
                {
                    await StandaloneRestore.SaveSnapshotAsync(memberOptions, tls, logger, cancellationToken);
                }

                await _member.StopAsync(cancellationToken);
                return t with { Stage = 1 };
            case 1:
                // Stopped again: after a crash, the agent's next generation may have started the member meanwhile.
                await _member.StopAsync(cancellationToken);
                await StandaloneRestore.StageAsync(memberOptions, logger, cancellationToken);
                return t with { Stage = 2 };
            case 2:
                await _member.StopAsync(cancellationToken);
                StandaloneRestore.Install(_member);
                return t with { Stage = 3 };
            case 3:
                if (_member.RunningPid() is null)
                {
                    await _member.StartAsync(EtcdStartMode.Resume, "", cancellationToken);
                }

                await _member.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
                return t with { Stage = 4 };
            default:
                // The old master's key would outlive it by a lease TTL: clear it so this host is master at once.
                using (var connection = new EtcdConnection(localEndpoints, tls))
                {
                    await connection.Client.DeleteAsync(PoolKeys.Root + "master", cancellationToken: cancellationToken);
                    await connection.Client.DeleteAsync(PoolKeys.Root + "master-designated", cancellationToken: cancellationToken);
                }

                new EtcdMembership(EtcdRole.Voter, localEndpoints, $"{memberOptions.Name}={memberOptions.PeerUrl}", 0).Save(memberOptions.MembershipFile);
                return null;
        }
    }

    /// <summary>
    /// While the agent runs (no membership change under way): if this host should run a member (a voter or learner with
    /// data) and its process is gone, starts it again from its data directory and waits until it serves. True if it did.
    /// </summary>
    public async Task<bool> RestartMemberIfDeadAsync(CancellationToken cancellationToken)
    {
        if (_member.RunningPid() is not null || File.Exists(TransitionFile) || !_member.HasData
            || EtcdMembership.Load(memberOptions.MembershipFile) is not { Role: EtcdRole.Voter or EtcdRole.Learner })
        {
            return false;
        }

        logger.LogWarning("etcd member {Name} is not running; restarting it from {DataDirectory}", memberOptions.Name, memberOptions.DataDirectory);
        await _member.StartAsync(EtcdStartMode.Resume, "", cancellationToken);
        await _member.WaitServingAsync(TimeSpan.FromSeconds(30), cancellationToken);
        logger.LogInformation("etcd member {Name} restarted (pid {Pid})", memberOptions.Name, _member.RunningPid());
        return true;
    }

    /// <summary>Stops this host's member (<c>host.shutdown</c>, <c>host.reboot</c>); the next <see cref="RunAsync"/> starts it again.</summary>
    public Task StopMemberAsync(CancellationToken cancellationToken) => _member.StopAsync(cancellationToken);

    /// <summary>True if this host's member sees a healthy cluster (a leader with quorum) right now.</summary>
    public async Task<bool> ClusterHealthyAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _member.WaitHealthyAsync(TimeSpan.FromSeconds(3), cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            return false;
        }
    }
}
