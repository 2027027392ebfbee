using Corral.Hypervisor;

namespace Corral.WebConsole.Consoles;

/// <summary>The VM processes running on this host, by VM uuid: a console is served by the host its VM runs on.</summary>
public interface IRunningVms
{
    IVmProcess? Find(string vmUuid);
}
