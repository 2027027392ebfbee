using System.Security.Cryptography.X509Certificates;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The pool's credentials rotated in a running three-host lab through xe (issue 15, item 3): lab-host2's certificate is
/// refreshed while a VM runs, its old certificate is refused by every member and the new one served, the pool keeps
/// its hosts live, and the VM then live-migrates to lab-host2 over TLS with the new certificate; after
/// <c>xe pool-secret-rotate</c> and <c>xe pool-certificate-sync</c> the hosts still call one another (a migration back).
/// On the shared lab: rotated credentials leave the pool working, and the tests after this one run with them.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class CredentialRotationLabTests(SharedLab shared)
{
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task A_refreshed_host_certificate_and_a_rotated_pool_secret_keep_the_pool_working_and_the_old_certificate_out()
    {
        var (vm, _) = await shared.NewTestVmAsync("rotation test VM", 25, on: 1, tools: false);
        try
        {
            await RotateAsync(vm);
        }
        finally
        {
            await shared.RemoveAsync(vm);
        }
    }

    private async Task RotateAsync(string vm)
    {
        var tls = Path.Combine(_lab.LabDirectory, "host2", "state", "etcd-tls");
        var oldCopy = Directory.CreateTempSubdirectory("corral-old-cert-").FullName;
        try
        {
            File.Copy(Path.Combine(tls, "host.pem"), Path.Combine(oldCopy, "host.pem"));
            File.Copy(Path.Combine(tls, "host.key"), Path.Combine(oldCopy, "host.key"));
            var oldSerial = Serial(Path.Combine(oldCopy, "host.pem"));

            await _lab.Xe("host-refresh-server-certificate", "host=lab-host2");
            Assert.NotEqual(oldSerial, Serial(Path.Combine(tls, "host.pem")));

            // Every member refuses the old certificate once its host has the pool's list (at once: the call syncs them).
            for (var host = 1; host <= 3; host++)
            {
                var (code, output) = await _lab.RunAsync("etcdctl", $"--endpoints=https://{_lab.Addresses[host - 1]}:2379",
                    $"--cacert={tls}/pool-ca.pem", $"--cert={oldCopy}/host.pem", $"--key={oldCopy}/host.key", "--dial-timeout=3s", "get", "/corral/", "--prefix", "--keys-only");
                Assert.True(code != 0, $"lab-host{host} served the revoked certificate: {output}");
                (code, output) = await _lab.RunAsync("etcdctl", $"--endpoints=https://{_lab.Addresses[host - 1]}:2379",
                    $"--cacert={tls}/pool-ca.pem", $"--cert={tls}/host.pem", $"--key={tls}/host.key", "--dial-timeout=3s", "endpoint", "health");
                Assert.True(code == 0, $"lab-host{host} refused the new certificate: {output}");
            }

            await LabSession.Eventually(async () => await _lab.Xe("host-list", "params=host-metrics-live", "--minimal") == "true,true,true",
                TimeSpan.FromSeconds(30), "every host live after the refresh");

            // Live migration to the refreshed host: its QEMU serves the new certificate.
            await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host2", "live=true");
            Assert.Equal(await HostAsync("lab-host2"), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));

            // A new pool secret, the CA certificates and lists synced: the hosts still reach one another.
            await _lab.Xe("pool-secret-rotate");
            await _lab.Xe("pool-certificate-sync");
            await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host1", "live=true");
            Assert.Equal(await HostAsync("lab-host1"), await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
            Assert.Equal("running", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
        }
        finally
        {
            Directory.Delete(oldCopy, recursive: true);
        }
    }

    private Task<string> HostAsync(string name) => _lab.Xe("host-list", $"name-label={name}", "--minimal");

    private static string Serial(string pem)
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(pem));
        return certificate.SerialNumber;
    }
}
