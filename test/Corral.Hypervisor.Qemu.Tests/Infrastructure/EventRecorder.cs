using System.Collections.Concurrent;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>Records a VM process's events and the raw QMP events of its connection, for tests to wait on.</summary>
public sealed class EventRecorder
{
    private readonly ConcurrentQueue<VmProcessEventKind> _kinds = new();
    private readonly ConcurrentQueue<string> _qmp = new();

    public EventRecorder(IVmProcess process)
    {
        process.EventReceived += (_, e) => _kinds.Enqueue(e.Kind);
        if (process is QemuVmProcess qemu)
        {
            qemu.Qmp.EventReceived += (_, e) => _qmp.Enqueue(e.Name);
        }
    }

    public int Count(VmProcessEventKind kind) => _kinds.Count(k => k == kind);

    public int CountQmp(string name) => _qmp.Count(n => n == name);

    public IReadOnlyList<string> QmpEvents => [.. _qmp];

    public Task WaitForAsync(VmProcessEventKind kind, TimeSpan timeout, int count = 1) =>
        QemuRig.WaitUntilAsync(() => Count(kind) >= count, timeout, $"{count} {kind} event(s)");
}
