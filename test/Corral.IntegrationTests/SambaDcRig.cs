using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Corral.IntegrationTests;

/// <summary>
/// A real Active Directory domain controller (Debian's Samba AD DC) for the domain <c>corral.lab</c> (NetBIOS CORRAL),
/// provisioned into a directory of its own and run in a network namespace of its own, reached from here over a veth
/// pair (10.79.N.1, N free). LDAPS with a certificate from a CA made for the test (<see cref="CaDirectory"/> holds that
/// CA alone). Users and groups are made with samba-tool. Stopped by its pid; the namespace deleted: on dispose whatever
/// the test's outcome (each step even if another fails), and, should the test host die first, when it exits.
/// </summary>
public sealed class SambaDcRig : IAsyncDisposable
{
    public const string Domain = "corral.lab";
    public const string Workgroup = "CORRAL";
    public const string AdminPassword = "Adm1nPass!x";

    private readonly string _directory;
    private readonly string _namespace;
    private int _pid;
    private int _disposed;

    private SambaDcRig(string directory, string ns, int subnet)
    {
        _directory = directory;
        _namespace = ns;
        Address = $"10.79.{subnet}.1";
        RootAddress = $"10.79.{subnet}.254";
    }

    /// <summary>The controller's address (in its certificate too).</summary>
    public string Address { get; }

    private string RootAddress { get; }

    /// <summary>A directory with the test CA's certificate only.</summary>
    public string CaDirectory => Path.Combine(_directory, "trusted");

    /// <summary>A directory with another CA's certificate only (which did not issue the controller's).</summary>
    public string OtherCaDirectory => Path.Combine(_directory, "other-ca");

    private string Config => Path.Combine(_directory, "etc", "smb.conf");

    public static async Task<SambaDcRig> StartAsync()
    {
        var subnet = FreeSubnet();
        var id = Guid.NewGuid().ToString("N")[..8];
        var rig = new SambaDcRig(Path.Combine(Path.GetTempPath(), "corral-samba-test-" + id), "corral-dc-" + id, subnet);
        AppDomain.CurrentDomain.ProcessExit += rig.OnProcessExit;
        try
        {
            await rig.ProvisionAsync();
            await rig.RunAsync();
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs samba-tool on the domain's database (users, groups: <c>user create alice ...</c>).</summary>
    public Task<string> ToolAsync(params string[] arguments) =>
        Command.RunAsync("samba-tool", [.. arguments, "-s", Config, "-H", Path.Combine(_directory, "private", "sam.ldb")]);

    private async Task ProvisionAsync()
    {
        foreach (var sub in new[] { "run", "log", "etc", "trusted", "other-ca", "tls" })
        {
            Directory.CreateDirectory(Path.Combine(_directory, sub));
        }

        var seed = Path.Combine(_directory, "seed.conf");
        await File.WriteAllTextAsync(seed, $"""
            [global]
            	pid directory = {_directory}/run
            	ncalrpc dir = {_directory}/run/ncalrpc
            	winbindd socket directory = {_directory}/run/winbindd
            	ntp signd socket directory = {_directory}/run/ntp_signd
            	log file = {_directory}/log/log.%m
            	interfaces = {Address}
            	bind interfaces only = yes
            	server services = ldap cldap kdc dns
            """);
        await Command.RunAsync("samba-tool", "domain", "provision", "-s", seed, $"--targetdir={_directory}", "--realm=" + Domain.ToUpperInvariant(),
            "--domain=" + Workgroup, "--server-role=dc", "--dns-backend=SAMBA_INTERNAL", "--host-name=dc1", $"--host-ip={Address}", $"--adminpass={AdminPassword}");
        WriteCertificates();
        var tls = Path.Combine(_directory, "tls");
        var config = await File.ReadAllTextAsync(Config);
        await File.WriteAllTextAsync(Config, config.Replace("[global]\n", $"[global]\n\ttls enabled = yes\n\ttls keyfile = {tls}/key.pem\n\ttls certfile = {tls}/cert.pem\n\ttls cafile = {tls}/ca.pem\n\tdns forwarder = {Address}\n", StringComparison.Ordinal));
        await File.WriteAllTextAsync(Path.Combine(_directory, "resolv.conf"), $"nameserver {Address}\n");
    }

    /// <summary>The test CA, the controller's certificate from it (its address and name), and another CA.</summary>
    private void WriteCertificates()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Corral test AD CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=dc1.corral.lab", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("dc1.corral.lab");
        names.AddIpAddress(IPAddress.Parse(Address));
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), RandomNumberGenerator.GetBytes(8));

        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherRequest = new CertificateRequest("CN=Corral test AD CA", otherKey, HashAlgorithmName.SHA256);
        otherRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var other = otherRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        var tls = Path.Combine(_directory, "tls");
        File.WriteAllText(Path.Combine(tls, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(tls, "cert.pem"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(tls, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(tls, "key.pem"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        File.WriteAllText(Path.Combine(CaDirectory, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(OtherCaDirectory, "ca.pem"), other.ExportCertificatePem());
    }

    private async Task RunAsync()
    {
        var veth = "vd" + _namespace[^8..];
        await Command.RunAsync("ip", "netns", "add", _namespace);
        await Command.RunAsync("ip", "-n", _namespace, "link", "set", "lo", "up");
        await Command.RunAsync("ip", "link", "add", veth, "type", "veth", "peer", "name", "dc0", "netns", _namespace);
        await Command.RunAsync("ip", "addr", "add", RootAddress + "/24", "dev", veth);
        await Command.RunAsync("ip", "-n", _namespace, "addr", "add", Address + "/24", "dev", "dc0");
        await Command.RunAsync("ip", "link", "set", veth, "up");
        await Command.RunAsync("ip", "-n", _namespace, "link", "set", "dc0", "up");

        var info = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "netns", "exec", _namespace, "samba", "-M", "single", "--foreground", "--no-process-group", "--debug-stdout", "-d0", "-s", Config })
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["RESOLV_CONF"] = Path.Combine(_directory, "resolv.conf");
        using var process = Process.Start(info)!;
        _pid = process.Id;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        for (var attempt = 0; attempt < 300; attempt++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"samba exited ({process.ExitCode}); see {_directory}/log");
            }

            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(Address, 636).WaitAsync(TimeSpan.FromSeconds(1));
                return;
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException)
            {
                await Task.Delay(100);
            }
        }

        throw new InvalidOperationException($"samba did not listen on {Address}:636");
    }

    /// <summary>A 10.79.N.0/24 that no address or route of this machine is in.</summary>
    private static int FreeSubnet()
    {
        var used = Command.RunAsync("ip", "-o", "addr").GetAwaiter().GetResult() + Command.RunAsync("ip", "route").GetAwaiter().GetResult();
        for (var n = 100; n < 250; n++)
        {
            if (!used.Contains($"10.79.{n.ToString(CultureInfo.InvariantCulture)}.", StringComparison.Ordinal))
            {
                return n;
            }
        }

        throw new InvalidOperationException("no free 10.79.N.0/24");
    }

    private void OnProcessExit(object? sender, EventArgs e) => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        try
        {
            await StopAsync();
        }
        finally
        {
            // The namespace and the files go even if the controller could not be stopped (it dies with its namespace's links).
            try
            {
                await Command.RunAsync("ip", "netns", "delete", _namespace); // the veth pair goes with it
            }
            catch (InvalidOperationException) when (!File.Exists(Path.Combine("/run/netns", _namespace)))
            {
                // Never made.
            }
            finally
            {
                if (Directory.Exists(_directory))
                {
                    Directory.Delete(_directory, recursive: true);
                }
            }
        }
    }

    private async Task StopAsync()
    {
        if (_pid <= 0)
        {
            return;
        }

        try
        {
            using var process = Process.GetProcessById(_pid);
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            // Already gone (or went while being stopped).
        }
    }
}
