using Corral.Agent.Hosting;
using Corral.Agent.Membership;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// VM.clean_shutdown and VM.hard_shutdown end only once the pool database says the VM is halted (and its ownership
/// claim is released), so that a client's next call, a start right away, finds it halted: XenServer clients do just
/// that. The VM supervisor records a process's end from its own continuation on the process's exit, which on a busy
/// host runs after the operation has seen the exit; the process here lets the supervisor hear of the exit 300 ms after
/// everyone else, which is when the old operation wrote nothing (it took the ended process, still listed, for a newer
/// copy) and returned with the VM still Running.
/// </summary>
public sealed class VmShutdownRecordTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-shutdown-it-").FullName;
    private EtcdFixture _etcd = null!;
    private ServiceProvider _services = null!;
    private IPoolDatabase _database = null!;
    private HostIdentity _host = null!;
    private ILease _lease = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var state = Path.Combine(_root, "state");
        _host = HostIdentity.LoadOrCreate(state);
        var services = TestAgentServices.Create(_root, state, _host, o => o.Endpoints = _etcd.Endpoint);
        services.AddSingleton<AgentLifecycle>();
        services.AddSingleton<HostRegistration>();
        services.AddSingleton<MigrationTlsIdentity>();
        services.AddSingleton<SharedSrPlugs>();
        services.AddSingleton<HostLiveness>();
        services.AddVmLeases(new ConfigurationBuilder().Build());
        services.AddSingleton<VmOperationHandler>();
        services.Configure<AgentOptions>(o => o.CleanShutdownTimeout = TimeSpan.FromSeconds(8));
        _services = services.BuildServiceProvider();
        _database = _services.GetRequiredService<IPoolDatabase>();
        _lease = await _database.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _lease.DisposeAsync();
            await _services.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData(HostOperationKinds.VmCleanShutdown)]
    [InlineData(HostOperationKinds.VmHardShutdown)]
    public async Task The_shutdown_ends_with_the_vm_recorded_halted_and_its_claim_released(string kind)
    {
        var (vmRef, uuid) = await RunningVmAsync();
        var process = new LateHeardProcess(uuid);
        _services.GetRequiredService<VmSupervisor>().Track(vmRef, process);

        var operation = new HostOperation { Id = "op1", Kind = kind, HostRef = _host.Ref, TaskRef = OpaqueRef.Null, Target = vmRef };
        var progress = new OperationProgress((next, _) => Task.FromResult(next), operation);
        await _services.GetRequiredService<VmOperationHandler>().ExecuteAsync(operation, progress, default);

        // What the caller's next call reads, at once.
        var vm = await _database.GetAsync(XenClasses.VM, vmRef, default);
        Assert.Equal(VmPowerState.Halted, vm.Get(XenApi.VM.PowerState));
        Assert.Equal(OpaqueRef.Null, vm.Get(XenApi.VM.ResidentOn));
        Assert.Null(await _database.Leases.GetValueAsync(PoolKeys.VmOwnerKey(vmRef), default));
        Assert.True(process.Disposed, "the supervisor let go of the ended process");
    }

    [Fact]
    public async Task A_guest_that_missed_the_first_request_to_shut_down_is_asked_again_and_goes_cleanly()
    {
        // As a guest still booting when asked: the ACPI button it got before its handler ran is lost.
        var (vmRef, uuid) = await RunningVmAsync();
        var process = new LateHeardProcess(uuid, heedsRequest: 2);
        _services.GetRequiredService<VmSupervisor>().Track(vmRef, process);

        var operation = new HostOperation { Id = "op2", Kind = HostOperationKinds.VmCleanShutdown, HostRef = _host.Ref, TaskRef = OpaqueRef.Null, Target = vmRef };
        await _services.GetRequiredService<VmOperationHandler>().ExecuteAsync(operation, new OperationProgress((next, _) => Task.FromResult(next), operation), default);

        Assert.Equal(2, process.ShutdownRequests);
        Assert.False(process.Killed, "asked again, the guest shut down by itself");
        Assert.Equal(VmPowerState.Halted, (await _database.GetAsync(XenClasses.VM, vmRef, default)).Get(XenApi.VM.PowerState));
    }

    [Fact]
    public async Task A_newer_copy_running_here_is_not_recorded_halted_by_the_end_of_the_old_one()
    {
        var (vmRef, uuid) = await RunningVmAsync();
        var supervisor = _services.GetRequiredService<VmSupervisor>();
        var old = new LateHeardProcess(uuid);
        supervisor.Track(vmRef, old);

        // HA restarted the VM on this very host before the old copy's end was recorded.
        var newer = new LateHeardProcess(uuid);
        supervisor.Track(vmRef, newer);
        await old.KillAsync(default);
        await supervisor.WhenEndRecordedAsync(old, default);

        Assert.Equal(VmPowerState.Running, (await _database.GetAsync(XenClasses.VM, vmRef, default)).Get(XenApi.VM.PowerState));
        Assert.Same(newer, supervisor.Find(uuid));
        Assert.Equal(_host.Ref, await _database.Leases.GetValueAsync(PoolKeys.VmOwnerKey(vmRef), default));
    }

    [Fact]
    public async Task A_vms_end_writes_its_tpm_state_to_its_vtpm_only_while_the_vm_is_this_hosts()
    {
        var (vmRef, _) = await RunningVmAsync();
        var tx = new PoolTransaction();
        var vtpm = Corral.Api.Methods.VtpmRecords.Create(tx, vmRef, isUnique: false);
        await _database.CommitAsync(tx, default);
        var vm = await _database.GetAsync(XenClasses.VM, vmRef, default);
        Assert.Equal(new TpmSpec(null).State, (await VmVtpm.SpecOfAsync(_database, vm, default))!.State);

        var supervisor = _services.GetRequiredService<VmSupervisor>();
        await supervisor.MarkHaltedAsync(vmRef, default, tpmState: [1, 2, 3]);
        Assert.Equal("AQID", await Corral.Api.Methods.VtpmRecords.ContentsAsync(_database, vtpm.Ref, default));
        Assert.Equal([1, 2, 3], (await VmVtpm.SpecOfAsync(_database, await _database.GetAsync(XenClasses.VM, vmRef, default), default))!.State);

        // Halted now, no longer this host's: a late end of an old copy writes nothing.
        await supervisor.MarkHaltedAsync(vmRef, default, tpmState: [9, 9]);
        Assert.Equal("AQID", await Corral.Api.Methods.VtpmRecords.ContentsAsync(_database, vtpm.Ref, default));

        // A VM that asks for a vTPM in its platform flags gets one at start, once.
        var (other, _) = await RunningVmAsync();
        await _database.UpdateAsync([(XenClasses.VM, other)], (objs, t) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VM.Platform, new Dictionary<string, string> { ["vtpm"] = "true" });
            t.Update(v);
        }, default);
        var logger = _services.GetRequiredService<ILogger<VmVtpm>>();
        var asked = await VmVtpm.EnsureForPlatformAsync(_database, await _database.GetAsync(XenClasses.VM, other, default), logger, default);
        var made = Assert.Single(asked.Get(XenApi.VM.VTPMs));
        Assert.Equal([made], (await VmVtpm.EnsureForPlatformAsync(_database, asked, logger, default)).Get(XenApi.VM.VTPMs));
        Assert.Null((await VmVtpm.SpecOfAsync(_database, asked, default))!.State); // a new TPM
    }

    /// <summary>A VM the pool database says runs here, with its ownership claim on this host's lease.</summary>
    private async Task<(string Ref, string Uuid)> RunningVmAsync()
    {
        var uuid = Guid.NewGuid().ToString();
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["uuid"] = uuid,
            ["name_label"] = "shutdown test",
            ["power_state"] = "Running",
            ["resident_on"] = _host.Ref,
            ["domid"] = 7L,
        });
        await _database.CommitAsync(tx, default);
        await _database.Leases.PutAsync(_lease, PoolKeys.VmOwnerKey(vm.Ref), _host.Ref, default);
        return (vm.Ref, uuid);
    }

    /// <summary>
    /// A VM process that stops when asked (its <paramref name="heedsRequest"/>th request to shut down, or a kill), whose
    /// exit the first to look at it, the supervisor that tracks it, hears of 300 ms after the others.
    /// </summary>
    private sealed class LateHeardProcess(string vmUuid, int heedsRequest = 1) : IVmProcess
    {
        private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task? _heardLate;

        public string VmUuid { get; } = vmUuid;

        public int ProcessId => 4242;

        public bool Disposed { get; private set; }

        public Task Exited
        {
            get
            {
                if (_heardLate is null)
                {
                    _heardLate = _exited.Task.ContinueWith(_ => Task.Delay(300), TaskScheduler.Default).Unwrap();
                    return _heardLate;
                }

                return _exited.Task;
            }
        }

        public bool ExitIntended => true;

        public GuestAgentReport? LatestGuestReport => null;

        public VmLaunchSpec Spec => new(VmUuid, "shutdown test", 256L << 20, 1, true, [], [], new Dictionary<string, string>());

        public event EventHandler<VmProcessEventArgs>? EventReceived
        {
            add { }
            remove { }
        }

        public int ShutdownRequests { get; private set; }

        public bool Killed { get; private set; }

        public Task RequestShutdownAsync(CancellationToken cancellationToken) => ++ShutdownRequests >= heedsRequest ? Stop() : Task.CompletedTask;

        public Task KillAsync(CancellationToken cancellationToken)
        {
            Killed = true;
            return Stop();
        }

        private Task Stop()
        {
            _exited.TrySetResult();
            return _exited.Task;
        }

        public void KillImmediately() => _exited.TrySetResult();

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }

        // Nothing else is asked of the process by a shutdown.
        public Task<VmRunState> QueryStateAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<DiskIoCounters>> QueryDiskIoAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task PauseAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task ResumeAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task RequestRebootAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task ResetAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<Stream> OpenConsoleAsync(VmConsoleKind kind, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<byte[]> ReadSerialConsoleTailAsync(int maxBytes, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task ChangeMediumAsync(int diskIndex, string? isoPath, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<DiskSpec> AttachDiskAsync(DiskSpec disk, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<bool> DetachDiskAsync(int diskIndex, TimeSpan timeout, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<NicSpec> AttachNicAsync(NicSpec nic, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<bool> DetachNicAsync(int nicIndex, TimeSpan timeout, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task StartMigrationAsync(string destinationUri, MigrationTuning tuning, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<MigrationProgress> QueryMigrationAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task CancelMigrationAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task ContinueMigrationAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task ExportDisksAsync(string host, int port, IReadOnlyList<int> diskIndexes, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task StopDiskExportAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task StartDiskMirrorAsync(int diskIndex, string nbdHost, int nbdPort, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<DiskMirrorState>> QueryDiskMirrorsAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task CompleteDiskMirrorsAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task AbandonDiskMirrorsAsync(CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
