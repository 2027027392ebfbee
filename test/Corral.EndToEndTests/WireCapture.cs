using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Corral.Model;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// What someone on the lab's management network sees: a packet capture of it (<c>./lab capture-start</c>, Debian's
/// tcpdump on the bridge every host's management link is a port of), whose TCP streams Debian's tcpflow puts back
/// together, searched for what must never cross that network in clear.
/// </summary>
public sealed partial class WireCapture
{
    private readonly LabSession _lab;

    private WireCapture(LabSession lab, string file)
    {
        _lab = lab;
        File = file;
    }

    /// <summary>The capture (pcap), kept in the temporary directory beside the copies of the lab's logs.</summary>
    public string File { get; }

    /// <summary>Where a capture named <paramref name="name"/> is written.</summary>
    public static string PathFor(string name) =>
        Path.Combine(Path.GetTempPath(), $"corral-{name}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}.pcap");

    public static async Task<WireCapture> StartAsync(LabSession lab, string name)
    {
        var capture = new WireCapture(lab, PathFor(name));
        await lab.LabAsync("capture-start", capture.File);
        return capture;
    }

    /// <summary>Stops the capture; tcpdump writes what it holds before it ends.</summary>
    public Task StopAsync() => _lab.LabAsync("capture-stop");

    /// <summary>
    /// Sends <paramref name="needle"/> in clear, as the session reference of a call to a host's plain HTTP port (refused:
    /// the session is no session). A capture whose reading does not show it afterwards sees nothing, and proves nothing.
    /// </summary>
    public static async Task SendInClearAsync(string address, string needle)
    {
        using var api = new JsonRpcClient(new Uri($"http://{address}/"));
        var refused = await Assert.ThrowsAsync<XenApiException>(() => api.CallAsync("pool.get_all", needle));
        Assert.Equal("SESSION_INVALID", refused.Code);
    }

    /// <summary>A JSON-RPC client over HTTPS to lab host <paramref name="host"/>, trusting that host's certificate alone.</summary>
    public static JsonRpcClient HttpsClient(LabSession lab, int host)
    {
        var pem = Path.Combine(lab.LabDirectory, $"host{host}", "state", "xapi-ssl.pem");
        using var certificate = X509Certificate2.CreateFromPemFile(pem);
        var pinned = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString(HashAlgorithmName.SHA256) == pinned,
        };
        return new JsonRpcClient(new Uri($"https://{lab.Addresses[host - 1]}/"), handler);
    }

    /// <summary>
    /// What must never cross the management network in clear that lab host <paramref name="host"/> keeps: the pool
    /// secret, root's password hash, and the private keys of the pool's CA and of the host's certificate (each by its
    /// longest line of base64).
    /// </summary>
    public static Dictionary<string, string> HostSecrets(LabSession lab, int host)
    {
        var state = Path.Combine(lab.LabDirectory, $"host{host}", "state");
        using var credentials = JsonDocument.Parse(System.IO.File.ReadAllText(Path.Combine(state, "credentials.json")));
        var secrets = new Dictionary<string, string>
        {
            ["the pool secret"] = credentials.RootElement.GetProperty("PoolSecret").GetString()!,
            ["root's password hash"] = credentials.RootElement.GetProperty("RootPasswordHash").GetString()!,
        };
        foreach (var key in new[] { "pool-ca.key", $"host.key" })
        {
            var lines = System.IO.File.ReadAllLines(Path.Combine(state, "etcd-tls", key)).Where(l => !l.StartsWith("-----", StringComparison.Ordinal));
            secrets[$"lab-host{host}'s {key}"] = lines.MaxBy(l => l.Length)!;
        }

        return secrets;
    }

    /// <summary>Reads the capture: its TCP streams put back together (tcpflow), each stream and the capture itself searched for each needle.</summary>
    public static async Task<WireReading> ReadAsync(string pcap, IReadOnlyDictionary<string, string> needles)
    {
        var directory = Directory.CreateTempSubdirectory("corral-flows-").FullName;
        try
        {
            using (var tcpflow = Process.Start(new ProcessStartInfo("tcpflow", ["-r", pcap, "-o", directory]) { RedirectStandardOutput = true, RedirectStandardError = true })!)
            {
                var said = tcpflow.StandardError.ReadToEndAsync();
                await tcpflow.StandardOutput.ReadToEndAsync();
                await tcpflow.WaitForExitAsync();
                Assert.True(tcpflow.ExitCode == 0, $"tcpflow could not read {pcap}: {await said}");
            }

            var patterns = needles.ToDictionary(n => n.Key, n => Encoding.UTF8.GetBytes(n.Value));
            var streams = new List<WireStream>();
            var found = new List<string>();
            foreach (var file in Directory.GetFiles(directory))
            {
                if (FlowName().Match(Path.GetFileName(file)) is not { Success: true } flow)
                {
                    continue; // tcpflow's own report
                }

                var bytes = await System.IO.File.ReadAllBytesAsync(file);
                var stream = new WireStream(Address(flow.Groups[1].Value), Port(flow.Groups[2].Value), Address(flow.Groups[3].Value), Port(flow.Groups[4].Value), bytes.Length);
                streams.Add(stream);
                found.AddRange(patterns.Where(p => bytes.AsSpan().IndexOf(p.Value) >= 0).Select(p => $"{p.Key} in {stream}"));
            }

            // What is not TCP, or not put back together, as the capture holds it.
            var whole = await System.IO.File.ReadAllBytesAsync(pcap);
            found.AddRange(patterns.Where(p => whole.AsSpan().IndexOf(p.Value) >= 0).Select(p => $"{p.Key} in the capture's packets"));
            return new WireReading(streams, found);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // tcpflow names a stream's file by its source and destination, zero-padded: 010.078.000.011.47378-010.078.000.001.00389
    [GeneratedRegex(@"^(\d{3}\.\d{3}\.\d{3}\.\d{3})\.(\d{5})-(\d{3}\.\d{3}\.\d{3}\.\d{3})\.(\d{5})(c\d+)?$")]
    private static partial Regex FlowName();

    private static string Address(string padded) => string.Join('.', padded.Split('.').Select(o => int.Parse(o, CultureInfo.InvariantCulture)));

    private static int Port(string padded) => int.Parse(padded, CultureInfo.InvariantCulture);
}

/// <summary>One direction of a TCP connection, and how many bytes it carried.</summary>
public sealed record WireStream(string From, int FromPort, string To, int ToPort, long Bytes)
{
    public override string ToString() => $"{From}:{FromPort} -> {To}:{ToPort} ({Bytes} bytes)";
}

/// <summary>A capture as read: its streams, and which needle was found where.</summary>
public sealed record WireReading(IReadOnlyList<WireStream> Streams, IReadOnlyList<string> Found)
{
    /// <summary>Where the needles other than <paramref name="control"/> (the one sent in clear on purpose) were found.</summary>
    public IReadOnlyList<string> FoundBesides(string control) =>
        Found.Where(f => !f.StartsWith(control + " in ", StringComparison.Ordinal)).ToList();

    /// <summary>Whether the needle <paramref name="name"/> was found.</summary>
    public bool Saw(string name) => Found.Any(f => f.StartsWith(name + " in ", StringComparison.Ordinal));

    /// <summary>The bytes that went between two addresses, both ways.</summary>
    public long BytesBetween(string a, string b) =>
        Streams.Where(s => (s.From == a && s.To == b) || (s.From == b && s.To == a)).Sum(s => s.Bytes);

    /// <summary>Bytes by the lower port of each connection (most often the service's), largest first: what crossed, for people.</summary>
    public string Summary() => string.Join("; ", Streams.GroupBy(s => Math.Min(s.FromPort, s.ToPort))
        .Select(g => (Port: g.Key, Bytes: g.Sum(s => s.Bytes), Count: g.Count()))
        .OrderByDescending(g => g.Bytes).Select(g => $"port {g.Port}: {g.Bytes} bytes in {g.Count} streams"));
}
