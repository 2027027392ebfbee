using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Corral.EndToEndTests;

/// <summary>One real Corral agent process, configured like the lab configures it, stopped by its pid.</summary>
public sealed class AgentHost : IAsyncDisposable
{
    private readonly Dictionary<string, string> _environment;
    private Process? _process;

    public AgentHost(string etcdEndpoint, string stateDirectory, string runtimeDirectory, string bridge, string guestImages, string templateLibrary,
        string hostName = "e2e-host")
    {
        Port = FreePort();
        HttpsPort = FreePort();
        CertificatePath = Path.Combine(stateDirectory, "xapi-ssl.pem");
        _environment = new Dictionary<string, string>
        {
            ["Corral__Agent__HostName"] = hostName,
            ["Corral__Agent__StateDirectory"] = stateDirectory,
            ["Corral__Agent__InitialRootPassword"] = Password,
            ["Corral__Agent__GuestImageDirectory"] = guestImages,
            ["Corral__Agent__TemplateLibraryDirectory"] = templateLibrary,
            ["Corral__Agent__CleanShutdownTimeout"] = "00:01:30",
            ["Corral__PoolDefaults__VmBridge"] = bridge,
            // This machine's own network card is not the test pool's: no PIFs.
            ["Corral__Network__PhysicalInterfaces"] = "none",
            ["Corral__Etcd__Endpoints"] = etcdEndpoint,
            ["Corral__Qemu__RuntimeDirectory"] = runtimeDirectory,
            ["Corral__Qemu__ForceAccelerator"] = Environment.GetEnvironmentVariable("CORRAL_ACCELERATOR") ?? "tcg",
            ["Corral__Https__ListenAddress"] = "127.0.0.1",
            ["Corral__Https__HttpPort"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Corral__Https__HttpsPort"] = HttpsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        Directory.CreateDirectory(stateDirectory);
        Log = Path.Combine(stateDirectory, "..", $"agent-{Port}.log");
    }

    public const string Password = "e2e-password";

    /// <summary>The plain HTTP port (XenServer's 80).</summary>
    public int Port { get; }

    /// <summary>The HTTPS port (XenServer's 443), served with the host's own certificate.</summary>
    public int HttpsPort { get; }

    /// <summary>The host's certificate and key, made by the agent at its first start.</summary>
    public string CertificatePath { get; }

    /// <summary>The SHA-256 fingerprint of the certificate the agent serves, to pin it (xapi's format).</summary>
    public string CertificateFingerprint()
    {
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(CertificatePath));
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(certificate.RawData));
    }

    public string Log { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{Port}");

    public static string AgentBinary =>
        Path.Combine(AppContext.BaseDirectory.Replace("test/Corral.EndToEndTests", "src/Corral.Agent", StringComparison.Ordinal), "corral-agent");

    public void Start()
    {
        var info = new ProcessStartInfo(AgentBinary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in _environment)
        {
            info.Environment[k] = v;
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("could not start the agent");
        var log = new StreamWriter(Log, append: true) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Kills the agent at once (SIGKILL): what a crash looks like to the VMs it runs.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
    }
}
