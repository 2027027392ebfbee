using Corral.Api.Sessions;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>Who the pool master is, as this host last saw the election; null while unknown.</summary>
public sealed class MasterState(IOptions<ApiOptions> options)
{
    private volatile string? _masterRef;

    public string? MasterRef => _masterRef;

    /// <summary>True unless an election has named another host: a lone or starting host serves everything.</summary>
    public bool ThisHostMayServe => _masterRef is null || _masterRef == options.Value.HostRef;

    /// <summary>True once an election has named this host the master (false while unknown).</summary>
    public bool IsThisHost => _masterRef is { } m && m == options.Value.HostRef;

    public void Set(string? masterRef) => _masterRef = masterRef;
}
