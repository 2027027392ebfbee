using Corral.Api.Client;
using Corral.Api.Client.Tls;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Membership;

/// <summary>
/// The agent's side of pool membership. Everything that needs the remote master (credentials, a place in its
/// cluster) is done while the caller waits, so errors reach the caller; the local steps (restarting the etcd member)
/// are written down as a <see cref="MembershipTransition"/> and run between this generation of the agent and the next.
/// </summary>
public sealed class PoolMembership(
    EtcdPoolDatabase database,
    SessionService sessions,
    RemoteHosts remote,
    MembershipTransitionRunner runner,
    AgentLifecycle lifecycle,
    IOptions<EtcdOptions> etcdOptions,
    ILogger<PoolMembership> logger) : IPoolMembership
{
    private static readonly SemaphoreSlim AdmissionLock = new(1, 1);

    private static readonly EventId CertificateIssued = new(1563, "PoolCertificateIssued");
    private static readonly EventId CertificateRefused = new(1564, "PoolCertificateRefused");

    private EtcdMemberOptions Member => etcdOptions.Value.Member;

    public async Task JoinAsync(string masterAddress, string user, string password, CancellationToken cancellationToken)
    {
        RequireManagedMember();
        var (client, session, presented) = await LoginAsync(masterAddress, user, password, cancellationToken);
        using (client)
        {
            var theirPools = await CallAsync(client, "pool.get_all", [session], cancellationToken) as List<object?> ?? [];
            var ourPools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
            if (theirPools.Any(p => ourPools.Any(o => o.Ref == p as string)))
            {
                throw new XenApiException(ErrorCodes.OperationNotAllowed, "This host is already a member of that pool");
            }

            var poolCertificates = await MasterCertificatesAsync(client, session, theirPools, presented, cancellationToken);
            var (admission, tls) = await AdmitThroughAsync(client, session, cancellationToken);
            Schedule(new MembershipTransition(MembershipChange.Join, 0, Enum.Parse<EtcdRole>(admission.Role), admission.MemberId, admission.InitialCluster,
                admission.Endpoints, client.Endpoint.Authority, admission.PoolSecret, poolCertificates, tls));
        }
    }

    /// <summary>
    /// The pool's host certificates, read from its master over the connection the joining host's credentials opened;
    /// the master's own must be the one it presented. From then on this host checks the pool's hosts against these.
    /// </summary>
    private static async Task<IReadOnlyList<PoolHostCertificate>> MasterCertificatesAsync(JsonRpcXenApiClient client, string session, List<object?> pools,
        PresentedCertificate presented, CancellationToken cancellationToken)
    {
        var master = pools.Count > 0 ? await CallAsync(client, "pool.get_master", [session, pools[0]], cancellationToken) as string : null;
        var records = await CallAsync(client, "Certificate.get_all_records", [session], cancellationToken) as Dictionary<string, object?> ?? [];
        var certificates = PoolCertificateTrust.HostCertificates(records);
        try
        {
            RemoteHosts.CheckJoinedMaster(master ?? "", presented, certificates);
        }
        catch (CertificateRejectedException ex)
        {
            throw new XenApiException(ErrorCodes.JoiningHostConnectionFailed, ex.Message);
        }

        return certificates;
    }

    public async Task<MemberAdmission> AdmitAsync(string memberName, string peerUrl, string signingRequest, int hostsAfterJoin,
        CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(peerUrl, UriKind.Absolute, out _) || memberName.Length == 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "peer_url", peerUrl);
        }

        // Signed before the cluster changes: a request refused leaves no learner behind.
        using var ca = Tls.LoadAuthority();
        var certificate = IssueCertificate(ca, memberName, peerUrl, signingRequest);

        // etcd admits one learner at a time; joins are serialised here rather than failing on each other.
        await AdmissionLock.WaitAsync(cancellationToken);
        try
        {
            var admin = database.CreateClusterAdmin(logger);
            var members = await admin.ListAsync(cancellationToken);
            foreach (var stale in members.Where(m => m.PeerUrls.Contains(peerUrl) || (m.Name == memberName && m.Name.Length > 0)))
            {
                // A retry, or a host coming back after an emergency transition dropped it: its old member goes first.
                await admin.RemoveAsync(stale.Id, cancellationToken);
            }

            members = await admin.ListAsync(cancellationToken);
            var target = VoterPolicy.TargetVoters(hostsAfterJoin);
            // A learner still catching up (the previous joiner) would make this host a mere client: give it time to
            // be promoted, by its own host or here, before deciding.
            var waitUntil = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (members.Any(m => m.IsLearner) && members.Count(v => !v.IsLearner) < target && DateTime.UtcNow < waitUntil)
            {
                foreach (var learner in members.Where(m => m.IsLearner && m.Name.Length > 0))
                {
                    try
                    {
                        await admin.PromoteAsync(learner.Id, TimeSpan.FromSeconds(2), cancellationToken);
                    }
                    catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                    {
                        logger.LogDebug(ex, "Learner {Name} could not be promoted yet", learner.Name);
                    }
                }

                await Task.Delay(500, cancellationToken);
                members = await admin.ListAsync(cancellationToken);
            }

            var role = VoterPolicy.RoleFor(members.Count(m => !m.IsLearner), members.Count(m => m.IsLearner), hostsAfterJoin);
            ulong id = 0;
            var initialCluster = "";
            if (role != EtcdRole.Client)
            {
                id = await admin.AddLearnerAsync(peerUrl, cancellationToken);
                initialCluster = EtcdClusterAdmin.InitialCluster(members, memberName, peerUrl);
            }

            var endpoints = members.Where(m => !m.IsLearner).SelectMany(m => m.ClientUrls).ToList();
            var secret = await sessions.GetPoolSecretAsync(cancellationToken);
            logger.LogInformation("Admitted {Name} ({PeerUrl}) as {Role}", memberName, peerUrl, role);
            return new MemberAdmission(role.ToString(), id, initialCluster, endpoints, secret, certificate, ca.CertificatePem, ca.KeyPem);
        }
        finally
        {
            AdmissionLock.Release();
        }
    }

    /// <summary>The joining host's certificate for its etcd member, signed by the pool's CA, which this host holds.</summary>
    private string IssueCertificate(PoolCertificateAuthority ca, string memberName, string peerUrl, string signingRequest)
    {
        try
        {
            using var certificate = ca.Issue(signingRequest, memberName, PoolCertificateAuthority.NamesFor(memberName, peerUrl), TimeProvider.System);
            logger.LogInformation(CertificateIssued, "Signed the etcd certificate of {Name} ({PeerUrl}), serial {Serial}, valid until {NotAfter:u}",
                memberName, peerUrl, certificate.SerialNumber, certificate.NotAfter.ToUniversalTime());
            return certificate.ExportCertificatePem();
        }
        catch (PoolCertificateException ex)
        {
            logger.LogWarning(CertificateRefused, "Refused to sign the etcd certificate of {Name}: {Reason}", memberName, ex.Message);
            throw new XenApiException(ErrorCodes.InvalidValue, "certificate_signing_request", ex.Message);
        }
    }

    private EtcdTlsFiles Tls => runner.Tls;

    public async Task PromoteAsync(ulong memberId, CancellationToken cancellationToken) =>
        await database.CreateClusterAdmin(logger).PromoteAsync(memberId, TimeSpan.FromSeconds(60), cancellationToken);

    public Task LeaveAsync(CancellationToken cancellationToken)
    {
        RequireManagedMember();
        Schedule(new MembershipTransition(MembershipChange.Leave, 0));
        return Task.CompletedTask;
    }

    public async Task EmergencyTransitionToMasterAsync(CancellationToken cancellationToken)
    {
        RequireManagedMember();
        if (EtcdMembership.Load(Member.MembershipFile) is { Role: not EtcdRole.Voter })
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "This host holds no voting copy of the pool database");
        }

        if (await runner.ClusterHealthyAsync(cancellationToken))
        {
            // With quorum, a forced one-member cluster would split the pool in two: a graceful handover is what is wanted.
            throw new XenApiException(ErrorCodes.OperationNotAllowed,
                "The pool database still has its quorum; use pool-designate-new-master for a planned change of master");
        }

        logger.LogWarning("Emergency transition to master: starting a one-member pool database from this host's copy");
        Schedule(new MembershipTransition(MembershipChange.ForceNewCluster, 0));
    }

    public async Task EmergencyResetMasterAsync(string masterAddress, CancellationToken cancellationToken)
    {
        RequireManagedMember();
        var secret = await sessions.GetPoolSecretAsync(cancellationToken);
        using var client = await remote.ConnectAsync(masterAddress, cancellationToken);
        var session = (string)(await CallAsync(client, "session.slave_login", ["", secret], cancellationToken))!;
        var (admission, tls) = await AdmitThroughAsync(client, session, cancellationToken);
        logger.LogWarning("The master is now at {Master}: rejoining its pool database", masterAddress);
        Schedule(new MembershipTransition(MembershipChange.Join, 0, Enum.Parse<EtcdRole>(admission.Role), admission.MemberId, admission.InitialCluster,
            admission.Endpoints, client.Endpoint.Authority, admission.PoolSecret, Tls: tls));
    }

    private void Schedule(MembershipTransition transition)
    {
        transition.Save(runner.TransitionFile);
        lifecycle.RequestRestart();
    }

    private void RequireManagedMember()
    {
        if (!Member.Enabled)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "This host's agent does not run its etcd member (Corral:Etcd:Member:Enabled)");
        }
    }

    /// <summary>
    /// Asks the master for a place in its pool database, over the HTTPS connection this host has checked: with a
    /// signing request for a key made here (the key never leaves this host), answered by its certificate and the pool's CA.
    /// </summary>
    private async Task<(MemberAdmission Admission, PoolTlsMaterial Tls)> AdmitThroughAsync(JsonRpcXenApiClient client, string session,
        CancellationToken cancellationToken)
    {
        var (keyPem, requestPem) = PoolCertificateAuthority.CreateSigningRequest(Member.Name);
        var answer = await CallAsync(client, "pool.corral_admit_member", [session, Member.Name, Member.PeerUrl, requestPem], cancellationToken)
            as Dictionary<string, object?> ?? throw new XenApiException(ErrorCodes.JoiningHostServiceFailed);
        var role = Enum.Parse<EtcdRole>(XenValue.AsString(answer.GetValueOrDefault("role")));
        var id = ulong.Parse(XenValue.AsString(answer.GetValueOrDefault("member_id")), System.Globalization.NumberStyles.HexNumber,
            System.Globalization.CultureInfo.InvariantCulture);
        var endpoints = (answer.GetValueOrDefault("endpoints") as List<object?> ?? []).Select(XenValue.AsString).ToList();
        var admission = new MemberAdmission(role.ToString(), id, XenValue.AsString(answer.GetValueOrDefault("initial_cluster")), endpoints,
            XenValue.AsString(answer.GetValueOrDefault("pool_secret")), XenValue.AsString(answer.GetValueOrDefault("certificate")),
            XenValue.AsString(answer.GetValueOrDefault("ca_certificate")), XenValue.AsString(answer.GetValueOrDefault("ca_key")));
        return (admission, CheckIssued(admission, keyPem));
    }

    /// <summary>What the master sent must be usable before this host stops its member for it: a CA with its key, and a certificate of that CA for this host's key.</summary>
    private static PoolTlsMaterial CheckIssued(MemberAdmission admission, string keyPem)
    {
        try
        {
            using var ca = PoolCertificateAuthority.FromPem(admission.CaCertificate, admission.CaKey);
            using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(admission.Certificate, keyPem);
            if (!PoolCertificateAuthority.Verifies(ca.Certificate, certificate))
            {
                throw new PoolCertificateException("the certificate is not the pool CA's");
            }
        }
        catch (Exception ex) when (ex is PoolCertificateException or System.Security.Cryptography.CryptographicException)
        {
            throw new XenApiException(ErrorCodes.JoiningHostServiceFailed, $"the master's answer holds no usable etcd certificate: {ex.Message}");
        }

        return new PoolTlsMaterial(admission.CaCertificate, admission.CaKey, admission.Certificate, keyPem);
    }

    /// <summary>
    /// Logs in to the master of the pool to join (following HOST_IS_SLAVE), over HTTPS whose certificate this host
    /// cannot know yet: what the master presented is noted, to be checked against its pool's records.
    /// </summary>
    private async Task<(JsonRpcXenApiClient Client, string Session, PresentedCertificate Presented)> LoginAsync(string address, string user, string password,
        CancellationToken cancellationToken)
    {
        var presented = new PresentedCertificate();
        var client = remote.ConnectToJoin(address, presented);
        try
        {
            return (client, (string)(await CallAsync(client, "session.login_with_password", [user, password, "1.0", "corral-agent"], cancellationToken))!, presented);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HostIsSlave && ex.Parameters.Count > 0 && ex.Parameters[0].Length > 0)
        {
            client.Dispose();
            return await LoginAsync(ex.Parameters[0], user, password, cancellationToken);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static async Task<object?> CallAsync(IXenApiClient client, string method, IReadOnlyList<object?> arguments, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CallAsync(method, arguments, cancellationToken);
        }
        catch (XenApiTransportException ex)
        {
            throw new XenApiException(ErrorCodes.JoiningHostConnectionFailed, ex.Message);
        }
    }
}
