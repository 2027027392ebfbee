using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Each host's migration identity in a real etcd: the subject of its certificate of the pool's CA, published at its
/// agent's start (the one a destination's QEMU will accept from it), and withdrawn when the host has no TLS material.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MigrationTlsIdentityTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-migration-id-").FullName;
    private readonly HostIdentity _host = new(OpaqueRef.NewUuid(), OpaqueRef.New(), OpaqueRef.New());
    private EtcdFixture _etcd = null!;
    private ServiceProvider _services = null!;
    private IPoolDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        _services = services.BuildServiceProvider();
        _db = _services.GetRequiredService<IPoolDatabase>();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _services.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(_dir, recursive: true);
        }
    }

    private MigrationTlsIdentity Publisher(EtcdTlsFiles files) => new(_db, _host,
        Options.Create(new QemuOptions { TlsCaCertificateFile = files.CaCertificateFile, TlsCertificateFile = files.CertificateFile, TlsKeyFile = files.KeyFile }),
        _services.GetRequiredService<ILogger<MigrationTlsIdentity>>());

    [Fact]
    public async Task A_host_publishes_its_certificates_subject_and_withdraws_it_without_one()
    {
        var files = new EtcdTlsFiles(Path.Combine(_dir, "etcd-tls"));
        files.CreatePool("lab-host7", ["lab-host7", "10.0.0.17"], TimeProvider.System);

        await Publisher(files).PublishAsync(default);
        Assert.Equal("CN=lab-host7", await MigrationPeerIdentity.ReadAsync(_db, _host.Ref, default));
        Assert.Equal("", await MigrationPeerIdentity.ReadAsync(_db, OpaqueRef.New(), default));

        // A host ejected to a pool of its own gets a new certificate: its next start publishes that one's subject.
        files.Delete();
        files.CreatePool("lab-host7b", ["lab-host7b"], TimeProvider.System);
        await Publisher(files).PublishAsync(default);
        Assert.Equal("CN=lab-host7b", await MigrationPeerIdentity.ReadAsync(_db, _host.Ref, default));

        // Without TLS material, or with a certificate that cannot be read, the host has no identity to give.
        File.WriteAllText(files.CertificateFile, "not a certificate");
        await Publisher(files).PublishAsync(default);
        Assert.Equal("", await MigrationPeerIdentity.ReadAsync(_db, _host.Ref, default));
        files.CreatePool("lab-host7", ["lab-host7"], TimeProvider.System);
        await Publisher(files).PublishAsync(default);
        files.Delete();
        await Publisher(files).PublishAsync(default);
        Assert.Equal("", await MigrationPeerIdentity.ReadAsync(_db, _host.Ref, default));
    }
}
