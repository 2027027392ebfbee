using Corral.Hypervisor;

namespace Corral.Leases.Sanlock;

/// <summary>
/// Launches a VM's QEMU as <c>sanlock client command</c>: the client registers with the host's sanlock daemon, acquires
/// the lease for itself (unless <see cref="VmLeaseMode.Later"/>) and execs QEMU, which inherits the registration. The
/// daemon releases the lease when QEMU exits, and kills QEMU should the host stop renewing its delta lease (storage lost).
/// </summary>
public sealed class SanlockLeaseLauncher(SanlockClient client) : IVmLeaseLauncher
{
    public LeasedCommand Wrap(VmLease lease, string program, IReadOnlyList<string> arguments)
    {
        var command = new List<string> { "client", "command" };
        if (lease.Mode != VmLeaseMode.Later)
        {
            command.AddRange(["-r", SanlockClient.ResourceString(lease, lease.Mode == VmLeaseMode.Shared)]);
        }

        command.AddRange(["-c", program]);
        command.AddRange(arguments);
        return new LeasedCommand(client.Binary, command, client.Environment);
    }

    public string Explain(string output) => ExplainOutput(output);

    /// <summary>What sanlock printed for a refused launch or lease change, said for a person.</summary>
    public static string ExplainOutput(string output) => SanlockClient.LastDone(output) switch
    {
        ("acquire", var code) when SanlockClient.HeldElsewhere.Contains(code) =>
            $"another host holds the VM's lease on its shared storage (sanlock: acquire {code}); the VM runs there, or did until that host failed without being fenced",
        ("acquire", SanlockClient.AlreadyDone) => "this host already holds the VM's lease: another process of the VM runs here (sanlock: acquire -17)",
        ("acquire", -2) => "the VM's lease file is missing from its shared storage (sanlock: acquire -2)",
        ("register", var code) when code < 0 => $"this host's sanlock daemon did not take the VM's process (sanlock: register {code}); is it running?",
        _ => output,
    };
}
