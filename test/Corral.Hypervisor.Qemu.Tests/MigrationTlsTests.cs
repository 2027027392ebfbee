using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Corral.PoolDatabase.Etcd.Tls;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// Live and storage migration between two real QEMUs over QEMU's own TLS, with certificates of a pool CA made here as
/// a pool makes them: the destination accepts the source host's identity alone (another host of the same pool, a host
/// of another CA and a plain client are refused, and the real migration still goes through), the source goes only to a
/// destination whose certificate is the pool's and names the address dialled.
/// </summary>
[Collection(QemuVmCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MigrationTlsTests(ITestOutputHelper output) : IDisposable
{
    private static readonly byte[] MigrationHeader = [(byte)'Q', (byte)'E', (byte)'V', (byte)'M', 0, 0, 0, 3];

    private readonly PoolCertificateAuthority _ca = PoolCertificateAuthority.Create(TimeProvider.System);
    private readonly PoolCertificateAuthority _otherCa = PoolCertificateAuthority.Create(TimeProvider.System);
    private readonly string _certificates = Directory.CreateTempSubdirectory("cq-tls-").FullName;

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
        Directory.Delete(_certificates, recursive: true);
    }

    /// <summary>
    /// A host's pool TLS files as the agent keeps them (<see cref="EtcdTlsFiles"/>), its certificate issued by
    /// <paramref name="ca"/>; the pool CA it holds (certificate and key, as every pool host does) is <paramref name="trusts"/>,
    /// by default the issuer, and its CA file also names <paramref name="alsoTrusted"/>.
    /// </summary>
    private EtcdTlsFiles Host(string name, PoolCertificateAuthority? ca = null, PoolCertificateAuthority? trusts = null, string? alsoTrusted = null)
    {
        var issuer = ca ?? _ca;
        var pool = trusts ?? issuer;
        var trusted = alsoTrusted is null ? null : pool.CertificatePem + "\n" + alsoTrusted;
        var (key, request) = PoolCertificateAuthority.CreateSigningRequest(name);
        var names = Uri.CheckHostName(name) == UriHostNameType.Dns ? [name] : Array.Empty<string>();
        using var certificate = issuer.Issue(request, name, names, TimeProvider.System);
        var files = new EtcdTlsFiles(Path.Combine(_certificates, Guid.NewGuid().ToString("N")[..8]));
        files.Write(new PoolTlsMaterial(trusted ?? pool.CertificatePem, pool.KeyPem, certificate.ExportCertificatePem(), key));
        return files;
    }

    private static Action<QemuOptions> With(EtcdTlsFiles files, string? runtimeDirectory = null) => o =>
    {
        o.TlsCaCertificateFile = files.CaCertificateFile;
        o.TlsCertificateFile = files.CertificateFile;
        o.TlsKeyFile = files.KeyFile;
        o.TlsRevocationListFile = files.RevocationListFile;
        if (runtimeDirectory is not null)
        {
            o.RuntimeDirectory = runtimeDirectory;
        }
    };

    [GuestImageFact]
    public async Task A_running_guest_migrates_over_tls_and_the_destination_refuses_every_other_client()
    {
        await using var rig = new QemuRig(output);
        var sourceHost = Host("host-a");
        var source = rig.NewHypervisor(With(sourceHost));
        var destination = rig.NewHypervisor(With(Host("host-b"), Path.Combine(rig.Root, "vms-dest")));
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        var port = QemuRig.FreePort();
        var uri = $"tcp:127.0.0.1:{port}";
        var receiver = (QemuVmProcess)await destination.StartAsync(
            spec with { IncomingMigration = uri, IncomingPeerIdentity = QemuTlsIdentity.OfFile(sourceHost.CertificateFile) }, CancellationToken.None);
        Assert.Equal("CN=host-a", receiver.Spec.IncomingPeerIdentity);
        AssertOwnerOnly(receiver.Paths.Tls);

        // Before the source connects: a host of the same pool, the source's name under another CA, and a plain client.
        Assert.Equal(Probe.Refused, await ProbeAsync(port, Host("host-c")));
        Assert.Equal(Probe.Refused, await ProbeAsync(port, Host("host-a", _otherCa, trusts: _ca)));
        Assert.Equal(Probe.Refused, await ProbeAsync(port, null));
        Assert.Equal(VmRunState.Paused, await receiver.QueryStateAsync(CancellationToken.None));

        await sender.StartMigrationAsync(uri, MigrationTuning.Default, CancellationToken.None);
        var parameters = await sender.Qmp.ExecuteAsync("query-migrate-parameters", null, CancellationToken.None);
        Assert.Equal(QemuTlsCredentials.ClientId, parameters!["tls-creds"]!.GetValue<string>());
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover,
            "pre-switchover", TimeSpan.FromMinutes(2));
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest");
        var done = await sender.QueryMigrationAsync(CancellationToken.None);
        Assert.Equal(MigrationStatus.Completed, done.Status);
        output.WriteLine($"migrated over TLS: {done.TransferredBytes} bytes in {done.TotalTimeMilliseconds} ms");

        // The destination's credentials go with its runtime directory.
        var tls = receiver.Paths.Tls;
        await receiver.KillAsync(CancellationToken.None);
        await sender.KillAsync(CancellationToken.None);
        await receiver.DisposeAsync();
        await sender.DisposeAsync();
        await QemuRig.WaitUntilAsync(() => !Directory.Exists(tls), TimeSpan.FromSeconds(10), "the destination's TLS directory to go");
    }

    /// <summary>
    /// A certificate the pool has revoked (a host's replaced one, or an ejected host's) is refused at the handshake,
    /// although it names the identity the destination accepts: QEMU reads the pool's revocation list with its
    /// credentials. The host's current certificate is taken.
    /// </summary>
    [QemuFact]
    public async Task The_destination_refuses_a_revoked_certificate_of_the_source_host()
    {
        await using var rig = new QemuRig(output);
        var replaced = Host("host-a");
        var current = Host("host-a");
        using var replacedCertificate = X509Certificate2.CreateFromPem(File.ReadAllText(replaced.CertificateFile));
        var destinationHost = Host("host-b");
        Assert.True(destinationHost.WriteRevocationList([replacedCertificate.SerialNumber], TimeProvider.System));
        var identity = QemuTlsIdentity.OfFile(current.CertificateFile);
        Assert.Equal(identity, QemuTlsIdentity.OfFile(replaced.CertificateFile));

        var port = QemuRig.FreePort();
        var destination = await rig.NewHypervisor(With(destinationHost, Path.Combine(rig.Root, "vms-dest"))).StartAsync(
            rig.Spec(true, []) with { IncomingMigration = $"tcp:127.0.0.1:{port}", IncomingPeerIdentity = identity }, CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(((QemuVmProcess)destination).Paths.Tls, "ca-crl.pem")));

        Assert.Equal(Probe.Refused, await ProbeAsync(port, replaced));
        Assert.Equal(Probe.Open, await ProbeAsync(port, current, patience: 5));
    }

    [QemuFact]
    public async Task The_source_migrates_only_to_a_certificate_of_its_pool_that_names_the_address_dialled()
    {
        await using var rig = new QemuRig(output);
        var sourceHost = Host("host-a");
        var sender = (QemuVmProcess)await rig.NewHypervisor(With(sourceHost)).StartAsync(rig.Spec(true, []), CancellationToken.None);
        var identity = QemuTlsIdentity.OfFile(sourceHost.CertificateFile);
        var port = QemuRig.FreePort();

        // The probe tells a refusal from a stream taken: the source's own certificate is taken (by a destination
        // that then has a stream that ends, and gives up).
        var control = await rig.NewHypervisor(With(Host("host-b"), Path.Combine(rig.Root, "vms-c"))).StartAsync(
            sender.Spec with { IncomingMigration = $"tcp:127.0.0.1:{port}", IncomingPeerIdentity = identity }, CancellationToken.None);
        Assert.Equal(Probe.Open, await ProbeAsync(port, sourceHost, patience: 5));
        await control.KillAsync(CancellationToken.None);
        await control.DisposeAsync();

        // A destination whose own certificate is another CA's. It trusts the pool's CA as well as its own (QEMU checks
        // its certificate against its CA file), so that it would take the source: only the source can refuse. QEMU
        // checks the peer once the handshake is done, so the destination sees a stream that ends at once, and gives up.
        port = QemuRig.FreePort();
        var impostor = rig.NewHypervisor(With(Host("host-b", _otherCa, trusts: _otherCa, alsoTrusted: _ca.CertificatePem), Path.Combine(rig.Root, "vms-x")));
        var outsider = await impostor.StartAsync(sender.Spec with { IncomingMigration = $"tcp:127.0.0.1:{port}", IncomingPeerIdentity = identity },
            CancellationToken.None);
        var failed = await MigrateAndFailAsync(sender, $"tcp:127.0.0.1:{port}");
        Assert.Contains("certificate", failed, StringComparison.OrdinalIgnoreCase);
        Assert.True(await NeverRanAsync(outsider));

        // The pool's certificate, but dialled at an address it does not name (127.0.0.2: still loopback).
        var other = rig.NewHypervisor(With(Host("host-b"), Path.Combine(rig.Root, "vms-y")));
        port = QemuRig.FreePort();
        var misnamed = await other.StartAsync(sender.Spec with { IncomingMigration = $"tcp:127.0.0.2:{port}", IncomingPeerIdentity = identity },
            CancellationToken.None);
        failed = await MigrateAndFailAsync(sender, $"tcp:127.0.0.2:{port}");
        Assert.Contains("127.0.0.2", failed, StringComparison.Ordinal);
        Assert.True(await NeverRanAsync(misnamed));
        Assert.Equal(VmRunState.Running, await sender.QueryStateAsync(CancellationToken.None));
    }

    [QemuFact]
    public async Task A_disk_export_serves_the_source_host_alone_and_a_mirror_fills_it_over_tls()
    {
        await using var rig = new QemuRig(output);
        // A member name with every character RFC 4514 escapes: QEMU's authz compares the subject as GnuTLS spells it.
        var sourceHost = Host("odd,host+1 <#>;\\\"");
        var sourceDisk = Path.Combine(rig.Root, "source.qcow2");
        var targetDisk = Path.Combine(rig.Root, "target.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", sourceDisk, "64M"], CancellationToken.None);
        await CommandRunner.RunCheckedAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M 256k", sourceDisk], CancellationToken.None);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", targetDisk, "64M"], CancellationToken.None);
        var spec = rig.Spec(true, [new DiskSpec(0, sourceDisk, "qcow2", false, false, true)]);
        var sender = (QemuVmProcess)await rig.NewHypervisor(With(sourceHost)).StartAsync(spec, CancellationToken.None);
        var receiver = (QemuVmProcess)await rig.NewHypervisor(With(Host("host-b"), Path.Combine(rig.Root, "vms-dest"))).StartAsync(spec with
        {
            Disks = [spec.Disks[0] with { Path = targetDisk }],
            IncomingMigration = $"tcp:127.0.0.1:{QemuRig.FreePort()}",
            IncomingPeerIdentity = QemuTlsIdentity.OfFile(sourceHost.CertificateFile),
        }, CancellationToken.None);
        var nbdPort = QemuRig.FreePort();
        await receiver.ExportDisksAsync("127.0.0.1", nbdPort, [0], CancellationToken.None);

        var plain = await CommandRunner.RunAsync("qemu-img", ["info", $"nbd://127.0.0.1:{nbdPort}/drive0"], CancellationToken.None);
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("TLS", plain.StandardError, StringComparison.Ordinal);
        var stranger = await NbdInfoAsync(rig, Host("host-c"), nbdPort);
        Assert.NotEqual(0, stranger.ExitCode);
        // The source's very name, from another CA (trusting the pool's CA itself, so that only the export can refuse).
        var foreign = await NbdInfoAsync(rig, Host("odd,host+1 <#>;\\\"", _otherCa, trusts: _ca), nbdPort);
        Assert.NotEqual(0, foreign.ExitCode);
        var served = await NbdInfoAsync(rig, sourceHost, nbdPort);
        Assert.True(served.ExitCode == 0, served.StandardError);
        Assert.Contains("virtual size: 64 MiB", served.StandardOutput, StringComparison.Ordinal);

        await sender.StartDiskMirrorAsync(0, "127.0.0.1", nbdPort, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryDiskMirrorsAsync(CancellationToken.None)).Single() is { Ready: true } or { Failed: true },
            "the mirror to catch up");
        Assert.False((await sender.QueryDiskMirrorsAsync(CancellationToken.None)).Single().Failed);
        await sender.CompleteDiskMirrorsAsync(CancellationToken.None);
        await receiver.StopDiskExportAsync(CancellationToken.None);
        await sender.KillAsync(CancellationToken.None);
        await receiver.KillAsync(CancellationToken.None);
        await sender.DisposeAsync();
        await receiver.DisposeAsync();

        var copied = await CommandRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 1M 256k", targetDisk], CancellationToken.None);
        Assert.Contains("read 262144/262144", copied.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("Pattern verification failed", copied.StandardOutput, StringComparison.Ordinal);
    }

    [QemuFact]
    public async Task A_mirror_goes_only_to_an_export_whose_certificate_names_the_address_dialled()
    {
        await using var rig = new QemuRig(output);
        var sourceHost = Host("host-a");
        var sourceDisk = Path.Combine(rig.Root, "source.qcow2");
        var targetDisk = Path.Combine(rig.Root, "target.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", sourceDisk, "64M"], CancellationToken.None);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", targetDisk, "64M"], CancellationToken.None);
        var spec = rig.Spec(true, [new DiskSpec(0, sourceDisk, "qcow2", false, false, true)]);
        var sender = (QemuVmProcess)await rig.NewHypervisor(With(sourceHost)).StartAsync(spec, CancellationToken.None);
        var receiver = (QemuVmProcess)await rig.NewHypervisor(With(Host("host-b"), Path.Combine(rig.Root, "vms-dest"))).StartAsync(spec with
        {
            Disks = [spec.Disks[0] with { Path = targetDisk }],
            IncomingMigration = $"tcp:127.0.0.2:{QemuRig.FreePort()}",
            IncomingPeerIdentity = QemuTlsIdentity.OfFile(sourceHost.CertificateFile),
        }, CancellationToken.None);
        var nbdPort = QemuRig.FreePort();
        await receiver.ExportDisksAsync("127.0.0.2", nbdPort, [0], CancellationToken.None);

        // The pool's certificate and the source's identity: only the name is wrong (it names 127.0.0.1, not 127.0.0.2).
        var refused = await Assert.ThrowsAsync<QmpException>(() => sender.StartDiskMirrorAsync(0, "127.0.0.2", nbdPort, CancellationToken.None));
        output.WriteLine("refused: " + refused.Message);
        Assert.Contains("hostname 127.0.0.2", refused.Message, StringComparison.Ordinal);
        Assert.Empty(await sender.QueryDiskMirrorsAsync(CancellationToken.None));
        Assert.Equal(VmRunState.Running, await sender.QueryStateAsync(CancellationToken.None));
    }

    [QemuFact]
    public async Task Subjects_are_spelt_as_gnutls_spells_them()
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Host("a,b+c <d>;\\\"e\" #f ").CertificateFile));
        var file = Path.Combine(_certificates, "odd.pem");
        await File.WriteAllTextAsync(file, certificate.ExportCertificatePem());

        var printed = await CommandRunner.RunCheckedAsync("certtool", ["-i", "--infile", file], CancellationToken.None);
        var subject = printed.Split('\n').Select(l => l.TrimStart()).First(l => l.StartsWith("Subject: ", StringComparison.Ordinal))["Subject: ".Length..];

        Assert.Equal(subject, QemuTlsIdentity.Of(certificate));

        // A name of two parts (the pool CA's): in the reverse of the certificate's order.
        var caFile = Path.Combine(_certificates, "ca.pem");
        await File.WriteAllTextAsync(caFile, _ca.CertificatePem);
        printed = await CommandRunner.RunCheckedAsync("certtool", ["-i", "--infile", caFile], CancellationToken.None);
        subject = printed.Split('\n').Select(l => l.TrimStart()).First(l => l.StartsWith("Subject: ", StringComparison.Ordinal))["Subject: ".Length..];
        Assert.Equal(subject, QemuTlsIdentity.Of(_ca.Certificate));
    }

    /// <summary>qemu-img as an NBD client over TLS with <paramref name="client"/>'s certificate.</summary>
    private static async Task<CommandResult> NbdInfoAsync(QemuRig rig, EtcdTlsFiles client, int port)
    {
        var directory = Path.Combine(rig.Root, "client-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(directory);
        File.Copy(client.CaCertificateFile, Path.Combine(directory, "ca-cert.pem"));
        File.Copy(client.CertificateFile, Path.Combine(directory, "client-cert.pem"));
        File.Copy(client.KeyFile, Path.Combine(directory, "client-key.pem"));
        return await CommandRunner.RunAsync("qemu-img",
        [
            "info", "--object", $"tls-creds-x509,id=tls0,endpoint=client,dir={directory}",
            "--image-opts", $"driver=nbd,host=127.0.0.1,port={port},export=drive0,tls-creds=tls0",
        ], CancellationToken.None);
    }

    /// <summary>The destination never ran the guest: it still waits, or it gave up.</summary>
    private static async Task<bool> NeverRanAsync(IVmProcess destination)
    {
        try
        {
            return destination.Exited.IsCompleted || await destination.QueryStateAsync(CancellationToken.None) != VmRunState.Running;
        }
        catch (QmpDisconnectedException)
        {
            return true;
        }
    }

    private static async Task<string> MigrateAndFailAsync(QemuVmProcess sender, string uri)
    {
        await sender.StartMigrationAsync(uri, MigrationTuning.Default, CancellationToken.None);
        MigrationProgress state = default!;
        await QemuRig.WaitUntilAsync(async () => (state = await sender.QueryMigrationAsync(CancellationToken.None)).Status is MigrationStatus.Failed
            or MigrationStatus.Completed or MigrationStatus.PreSwitchover, "the migration to end");
        Assert.Equal(MigrationStatus.Failed, state.Status);
        return state.Error ?? "";
    }

    private enum Probe { Refused, Open }

    /// <summary>
    /// Connects to a destination's migration port as another client would (TLS with <paramref name="client"/>'s
    /// certificate, or plain TCP), sends the start of a migration stream and waits for QEMU to hang up.
    /// </summary>
    /// <param name="patience">How long a stream left open counts as taken: a refusal comes as soon as QEMU hangs up,
    /// so only a probe expected to be taken waits it out (a machine under load may take a while to hang up).</param>
    private async Task<Probe> ProbeAsync(int port, EtcdTlsFiles? client, int patience = 20)
    {
        var poolCa = X509Certificate2.CreateFromPem(_ca.CertificatePem);
        var serverTrusted = false;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        Stream stream = tcp.GetStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(patience));
        try
        {
            if (client is not null)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "127.0.0.1",
                    ClientCertificates = [client.LoadCertificate()],
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    // The destination is the pool's (whether it takes this client is the question).
                    RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                        serverTrusted = certificate is X509Certificate2 presented && PoolCertificateAuthority.Verifies(poolCa, presented),
                }, timeout.Token);
                stream = tls;
            }

            await stream.WriteAsync(MigrationHeader, timeout.Token);
            await stream.FlushAsync(timeout.Token);
            return await stream.ReadAsync(new byte[16], timeout.Token) == 0 ? Probe.Refused : Probe.Open;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            // Refused by the destination, not given up by this client for the destination's certificate.
            Assert.True(client is null || serverTrusted, "the probe did not trust the destination's certificate: " + ex.Message);
            return Probe.Refused;
        }
        catch (OperationCanceledException)
        {
            return Probe.Open;
        }
    }

    private static void AssertOwnerOnly(string directory)
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        Assert.All(Directory.GetFiles(directory), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
    }
}
