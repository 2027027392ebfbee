using System.Security.Cryptography;
using Corral.Agent.Hosting;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// Saves a piece of state the guest changes while its VM runs here (its UEFI variables, its TPM) into the pool database
/// every <see cref="SaveEvery"/> if it changed since the last save, so that a host that dies loses at most that much;
/// the state is also written when the VM stops (with the record of its end). Only while the VM is this host's.
/// </summary>
public abstract class RunningVmStateSaver(VmSupervisor supervisor, IPoolDatabase database, HostIdentity identity, ILogger logger) : BackgroundService
{
    public static readonly TimeSpan SaveEvery = TimeSpan.FromSeconds(30);
    private readonly Dictionary<string, string> _lastSaved = new(StringComparer.Ordinal);

    protected IPoolDatabase Database => database;

    /// <summary>What is saved, for the log ("UEFI variables").</summary>
    protected abstract string What { get; }

    protected abstract EventId SavedEvent { get; }

    /// <summary>Whether the process has this state at all.</summary>
    protected abstract bool Has(IVmProcess process);

    /// <summary>The state as the process holds it now; null if it cannot be read.</summary>
    protected abstract Task<byte[]?> ReadAsync(IVmProcess process, CancellationToken cancellationToken);

    /// <summary>Writes the state into the VM's records; false if they held it already.</summary>
    protected abstract Task<bool> WriteAsync(XenObject vm, byte[] state, CancellationToken cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SaveEvery);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            // VMs that no longer run here: their next start here saves afresh.
            var running = supervisor.All.Select(p => p.VmUuid).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _lastSaved.Keys.Where(uuid => !running.Contains(uuid)).ToList())
            {
                _lastSaved.Remove(gone);
            }

            foreach (var process in supervisor.All.Where(p => Has(p) && !p.Exited.IsCompleted))
            {
                try
                {
                    await SaveAsync(process, stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException && (database.IsUnavailable(ex) || ex is ConcurrentUpdateException or IOException))
                {
                    logger.LogWarning("Could not save the {What} of VM {Vm}: {Reason}", What, process.VmUuid, ex.Message);
                }
            }
        }
    }

    private async Task SaveAsync(IVmProcess process, CancellationToken cancellationToken)
    {
        if (await ReadAsync(process, cancellationToken) is not { } state)
        {
            return;
        }

        var digest = Convert.ToHexString(SHA256.HashData(state));
        if (_lastSaved.GetValueOrDefault(process.VmUuid) == digest)
        {
            return;
        }

        var vm = await database.FindByUuidAsync(XenClasses.VM, process.VmUuid, cancellationToken);
        if (vm is null || vm.Get(XenApi.VM.ResidentOn) != identity.Ref)
        {
            return;
        }

        if (await WriteAsync(vm, state, cancellationToken))
        {
            logger.LogInformation(SavedEvent, "Saved the {What} of VM {Vm}", What, vm.Get(XenApi.VM.NameLabel));
        }

        _lastSaved[process.VmUuid] = digest;
    }
}
