namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// An in-memory store with the etcd semantics HA relies on: one member per host; a leader exists only while it
/// reaches a majority (check-quorum: it steps down after an election timeout without one; pre-vote: a cut-off member
/// cannot depose it); a new leader is elected an election timeout after the old one was lost, and it refreshes every
/// lease to election timeout + TTL (etcd's lessor promotion: a lease can outlive its TTL); leases expire on the
/// leader's clock, checked every 500 ms, and their keys go with them; every request is linearizable, so it needs a
/// path from the caller to a member and from that member to a leader with quorum; revisions guard transactions.
/// </summary>
public sealed class SimEtcd(Simulation sim)
{
    private static readonly TimeSpan RaftTick = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LeaseCheck = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ElectionTimeout = TimeSpan.FromSeconds(1);

    private readonly SortedDictionary<string, (string Value, long ModRevision, long Lease)> _keys = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, (TimeSpan Ttl, DateTime ExpiresLeaderClock)> _leases = [];
    private TimeSpan? _leaderMissingSince;
    private TimeSpan _electionWait = ElectionTimeout;
    private long _nextLease = 0x1000;

    public SimHost? Leader { get; private set; }

    public long Revision { get; private set; } = 1;

    public long Term { get; private set; }

    public IReadOnlyDictionary<string, (string Value, long ModRevision, long Lease)> Keys => _keys;

    public void Start()
    {
        Tick();
        sim.At(LeaseCheck, CheckLeases);
    }

    /// <summary>The settled pool a scenario starts from: the first host leader and master, every host live.</summary>
    public void Bootstrap(SimHost host)
    {
        if (Leader is null)
        {
            Leader = host;
            Term = 1;
            Put(host, SimKeys.HaEnabled, sim.Scenario.HaEnabled ? "true" : "false");
        }

        var lease = Grant(host, sim.Scenario.Timings.LeaseTtl);
        Put(host, SimKeys.Live(host.Name), host.Name, lease);
        Put(host, SimKeys.HostEnabled(host.Name), "true");
        TryClaim(host, SimKeys.Master, host.Name, lease);
        host.Bootstrapped(lease);
    }

    public static bool MemberAlive(SimHost host) => host.Powered && !host.Frozen && host.MemberUp;

    private bool HasMajority(SimHost member) =>
        MemberAlive(member) && sim.Hosts.Count(h => MemberAlive(h) && sim.EtcdConnected(member.Name, h.Name)) * 2 > sim.Hosts.Count;

    /// <summary>A leader that can commit: alive and reaching a majority.</summary>
    public bool LeaderServing => Leader is not null && HasMajority(Leader);

    private void Tick()
    {
        if (LeaderServing)
        {
            _leaderMissingSince = null;
        }
        else
        {
            _leaderMissingSince ??= sim.Now;
            if (Leader is not null && sim.Now - _leaderMissingSince >= ElectionTimeout && MemberAlive(Leader))
            {
                sim.Log("etcd", $"leader {Leader.Name} steps down: no quorum");
                Leader = null;
            }

            if (sim.Now - _leaderMissingSince >= _electionWait)
            {
                Elect();
            }
        }

        sim.After(RaftTick, Tick);
    }

    private void Elect()
    {
        // Pre-vote: only a member that reaches a majority can win; of those, raft's randomized timeouts pick one.
        var candidates = sim.Hosts.Where(HasMajority).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var winner = sim.Seed == 0 ? candidates[0] : candidates[sim.Random.Next(candidates.Count)];
        Leader = winner;
        Term++;
        _leaderMissingSince = null;
        _electionWait = ElectionTimeout + sim.Jitter(ElectionTimeout);
        var now = winner.Clock.UtcNow;
        foreach (var id in _leases.Keys.ToList())
        {
            _leases[id] = (_leases[id].Ttl, now + ElectionTimeout + _leases[id].Ttl);
        }

        sim.Log("etcd", $"{winner.Name} elected leader (term {Term}); {_leases.Count} lease(s) refreshed");
    }

    private void CheckLeases()
    {
        if (LeaderServing)
        {
            var now = Leader!.Clock.UtcNow;
            foreach (var (id, lease) in _leases.Where(l => now >= l.Value.ExpiresLeaderClock).ToList())
            {
                Revoke(id, "expired");
            }
        }

        sim.After(LeaseCheck, CheckLeases);
    }

    private void Revoke(long id, string why)
    {
        _leases.Remove(id);
        var keys = _keys.Where(k => k.Value.Lease == id).Select(k => k.Key).ToList();
        Revision++;
        foreach (var key in keys)
        {
            _keys.Remove(key);
        }

        sim.Log("etcd", $"lease {id:x} {why}: {string.Join(", ", keys.Select(Short))}");
    }

    private static string Short(string key) => key.StartsWith("/corral/", StringComparison.Ordinal) ? key["/corral/".Length..] : key;

    /// <summary>Throws unless <paramref name="caller"/> reaches a member that reaches a leader with quorum.</summary>
    public void Reach(SimHost caller, bool requireAgent = true)
    {
        if (requireAgent && !caller.AgentRunning)
        {
            throw new SimUnavailableException($"{caller.Name}'s agent is not running");
        }

        if (!LeaderServing)
        {
            throw new SimUnavailableException("no etcd leader with quorum");
        }

        var members = sim.Scenario.ClientFailover ? sim.Hosts.OrderBy(h => h == caller ? 0 : 1).ToList() : [caller];
        if (!members.Any(m => MemberAlive(m) && sim.EtcdConnected(caller.Name, m.Name) && sim.EtcdConnected(m.Name, Leader!.Name)))
        {
            throw new SimUnavailableException($"{caller.Name} reaches no etcd member with a leader");
        }
    }

    public string? Get(SimHost caller, string key)
    {
        Reach(caller);
        return _keys.TryGetValue(key, out var kv) ? kv.Value : null;
    }

    public (string? Value, long Revision) GetWithRevision(SimHost caller, string key)
    {
        Reach(caller);
        return _keys.TryGetValue(key, out var kv) ? (kv.Value, kv.ModRevision) : (null, 0);
    }

    public IReadOnlyDictionary<string, string> GetPrefix(SimHost caller, string prefix)
    {
        Reach(caller);
        return _keys.Where(k => k.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(k => k.Key, k => k.Value.Value, StringComparer.Ordinal);
    }

    public long Grant(SimHost caller, TimeSpan ttl)
    {
        Reach(caller);
        var id = _nextLease++;
        _leases[id] = (ttl, Leader!.Clock.UtcNow + ttl);
        return id;
    }

    /// <summary>A keepalive arriving at the leader: the TTL from now on its clock, or 0 when the lease is gone.</summary>
    public long KeepAliveArrived(long id)
    {
        if (!_leases.TryGetValue(id, out var lease))
        {
            return 0;
        }

        _leases[id] = (lease.Ttl, Leader!.Clock.UtcNow + lease.Ttl);
        return (long)lease.Ttl.TotalSeconds;
    }

    public bool LeaseExists(long id) => _leases.ContainsKey(id);

    /// <summary>
    /// A transaction: every guard (key, mod revision; 0 for absent) must hold, then the puts (value null: delete) apply
    /// at one new revision. A put on a lease that no longer exists fails the whole transaction, as etcd's does.
    /// </summary>
    public bool Txn(SimHost caller, IReadOnlyList<(string Key, long Revision)> guards, IReadOnlyList<(string Key, string? Value, long Lease)> writes)
    {
        Reach(caller);
        foreach (var (key, revision) in guards)
        {
            var actual = _keys.TryGetValue(key, out var kv) ? kv.ModRevision : 0;
            if (actual != revision)
            {
                return false;
            }
        }

        if (writes.Any(w => w.Lease != 0 && !_leases.ContainsKey(w.Lease)))
        {
            throw new SimUnavailableException("requested lease not found");
        }

        Revision++;
        foreach (var (key, value, lease) in writes)
        {
            if (value is null)
            {
                _keys.Remove(key);
            }
            else
            {
                _keys[key] = (value, Revision, lease);
            }
        }

        return true;
    }

    public void Put(SimHost caller, string key, string value, long lease = 0) => Txn(caller, [], [(key, value, lease)]);

    public bool Delete(SimHost caller, string key) => Get(caller, key) is not null && Txn(caller, [], [(key, null, 0)]);

    public bool DeleteIfValue(SimHost caller, string key, string value)
    {
        var (current, revision) = GetWithRevision(caller, key);
        return current == value && Txn(caller, [(key, revision)], [(key, null, 0)]);
    }

    public bool TryClaim(SimHost caller, string key, string value, long lease) => Txn(caller, [(key, 0)], [(key, value, lease)]);

    /// <summary>The lease <paramref name="key"/> is bound to revoked, if the key still holds <paramref name="value"/> (etcd's LeaseRevoke).</summary>
    public bool RevokeHolder(SimHost caller, string key, string value)
    {
        Reach(caller);
        if (!_keys.TryGetValue(key, out var kv) || kv.Value != value || kv.Lease == 0 || !_leases.ContainsKey(kv.Lease))
        {
            return false;
        }

        Revoke(kv.Lease, $"revoked by {caller.Name}");
        return true;
    }
}
