using System.Globalization;
using System.Text.Json.Nodes;
using Corral.Platform;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// TLS on the streams QEMU opens between hosts: a live migration's memory stream and a storage migration's NBD export,
/// with QEMU's own TLS (<c>tls-creds-x509</c>, GnuTLS) and the host's certificate of the pool's CA
/// (<see cref="QemuOptions.TlsCertificateFile"/>), copied per VM into <see cref="VmRuntimePaths.Tls"/> (0700, files
/// 0600) under the names QEMU reads. The destination, the server, asks for a client certificate of the pool's CA and
/// accepts one identity only, the source host's (an <c>authz-simple</c> object); the source, the client, checks the
/// destination's certificate against the pool's CA and for the address it dials. A host without the files (a pool
/// without TLS material) keeps plain TCP, and says so once.
/// </summary>
public static class QemuTlsCredentials
{
    /// <summary>The destination's credentials (endpoint server), for the incoming migration and the NBD server.</summary>
    public const string ServerId = "corral-tls-server";

    /// <summary>The source's credentials (endpoint client), for the outgoing migration and the mirrors' NBD clients.</summary>
    public const string ClientId = "corral-tls-client";

    /// <summary>The destination's authorization: the source host's identity, the only one its servers accept.</summary>
    public const string PeerAuthorizationId = "corral-tls-peer";

    public static readonly EventId On = new(2110, "QemuTlsOn");
    public static readonly EventId Off = new(2111, "QemuTlsOff");
    public static readonly EventId PeerUnknown = new(2112, "QemuTlsPeerUnknown");

    private static int _plainNoted;

    /// <summary>True when this host has its pool's TLS material: the streams QEMU opens to other hosts use TLS.</summary>
    public static bool Available(QemuOptions options) =>
        new[] { options.TlsCaCertificateFile, options.TlsCertificateFile, options.TlsKeyFile }.All(f => f.Length > 0 && File.Exists(f));

    /// <summary>This host's identity as the other hosts' QEMU see it (<see cref="QemuTlsIdentity"/>); null without TLS material.</summary>
    public static string? LocalIdentity(QemuOptions options) => Available(options) ? QemuTlsIdentity.OfFile(options.TlsCertificateFile) : null;

    /// <summary>
    /// The destination's decision, before its QEMU starts: with TLS material it accepts only the identity the spec names
    /// (a migration that names none is refused: a server that took anyone with a pool certificate would take another
    /// host's stream); without, the identity is dropped and the streams are plain TCP.
    /// </summary>
    internal static VmLaunchSpec ForIncoming(VmLaunchSpec spec, QemuOptions options, ILogger logger)
    {
        if (spec.IncomingMigration is null)
        {
            return spec.IncomingPeerIdentity is null ? spec : spec with { IncomingPeerIdentity = null };
        }

        if (!Available(options))
        {
            NotePlain(logger, options);
            return spec with { IncomingPeerIdentity = null };
        }

        if (string.IsNullOrWhiteSpace(spec.IncomingPeerIdentity))
        {
            logger.LogWarning(PeerUnknown, "VM {Vm}: this host has its pool's TLS material, but the migration names no source identity to accept; refusing it",
                spec.VmUuid);
            throw new VmStartException("the migration's source host has no TLS identity in the pool database, and this host accepts migrations over TLS only");
        }

        logger.LogInformation(On, "VM {Vm}: the incoming migration and NBD exports take TLS, from {Peer} only", spec.VmUuid, spec.IncomingPeerIdentity);
        return spec;
    }

    /// <summary>
    /// The destination's QEMU arguments for <paramref name="spec"/> (after <see cref="ForIncoming"/>): its server
    /// credentials, the source's identity as the only one authorized, and both set on the migration before QEMU listens
    /// (<c>-global</c>: set later over QMP, a stream could come in first). Empty for plain TCP.
    /// </summary>
    internal static IReadOnlyList<string> IncomingArguments(VmLaunchSpec spec, VmRuntimePaths paths, QemuOptions options)
    {
        if (spec.IncomingMigration is null || spec.IncomingPeerIdentity is not { } peer)
        {
            return [];
        }

        Write(paths, options, "server");
        return
        [
            "-object", $"tls-creds-x509,id={ServerId},endpoint=server,dir={QemuCommandLine.Escape(paths.Tls)},verify-peer=on",
            "-object", $"authz-simple,id={PeerAuthorizationId},identity={QemuCommandLine.Escape(peer)}",
            "-global", $"migration.tls-creds={ServerId}",
            "-global", $"migration.tls-authz={PeerAuthorizationId}",
        ];
    }

    /// <summary>The NBD server's share of the destination's TLS (<c>nbd-server-start</c>'s arguments); nothing for plain TCP.</summary>
    internal static void AddToNbdServer(JsonObject arguments, VmLaunchSpec spec)
    {
        if (spec.IncomingPeerIdentity is not null)
        {
            arguments["tls-creds"] = ServerId;
            arguments["tls-authz"] = PeerAuthorizationId;
        }
    }

    /// <summary>
    /// The source's client credentials, made in its QEMU once (the files copied first); their id, or null without TLS
    /// material. Kept for the process's life: the mirrors' NBD clients and the migration hold on to them.
    /// </summary>
    internal static async Task<string?> ClientAsync(QmpClient qmp, VmRuntimePaths paths, QemuOptions options, ILogger logger, string vmUuid,
        CancellationToken cancellationToken)
    {
        if (!Available(options))
        {
            NotePlain(logger, options);
            return null;
        }

        var objects = await qmp.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/objects" }, cancellationToken) as JsonArray ?? [];
        if (objects.Any(o => o?["name"]?.GetValue<string>() == ClientId))
        {
            return ClientId;
        }

        Write(paths, options, "client");
        await qmp.ExecuteAsync("object-add", new JsonObject
        {
            ["qom-type"] = "tls-creds-x509",
            ["id"] = ClientId,
            ["endpoint"] = "client",
            ["dir"] = paths.Tls,
            ["verify-peer"] = true,
        }, cancellationToken);
        logger.LogInformation(On, "VM {Vm}: its outgoing migration and disk mirrors take TLS, checking the destination against the pool's CA", vmUuid);
        return ClientId;
    }

    /// <summary>
    /// A mirror's target: the destination's export over NBD, with TLS when <paramref name="credentials"/> is given
    /// (QEMU's legacy <c>nbd:</c> filename has no room for it; its JSON form does). The destination is checked for
    /// <paramref name="host"/>, the address dialled.
    /// </summary>
    internal static string NbdTarget(string host, int port, string export, string? credentials)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        if (credentials is null)
        {
            return $"nbd:{host}:{portText}:exportname={export}";
        }

        // The NBD connection as the raw image's file: drive-mirror names the format (raw) itself.
        var target = new JsonObject
        {
            ["file"] = new JsonObject
            {
                ["driver"] = "nbd",
                ["server"] = new JsonObject { ["type"] = "inet", ["host"] = host, ["port"] = portText },
                ["export"] = export,
                ["tls-creds"] = credentials,
            },
        };
        return "json:" + target.ToJsonString();
    }

    /// <summary>
    /// The pool CA's certificate and this host's certificate and key, as QEMU's endpoint reads them, and the pool's
    /// revocation list when the host has one (QEMU loads <c>ca-crl.pem</c> with the credentials, when they are made: a
    /// VM's incoming side at its start, its outgoing side at its first migration or mirror).
    /// </summary>
    private static void Write(VmRuntimePaths paths, QemuOptions options, string endpoint)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("QEMU's TLS credentials are written with Unix modes");
        }

        Directory.CreateDirectory(paths.Tls, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(paths.Tls, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Copy(options.TlsCaCertificateFile, Path.Combine(paths.Tls, "ca-cert.pem"));
        Copy(options.TlsCertificateFile, Path.Combine(paths.Tls, $"{endpoint}-cert.pem"));
        Copy(options.TlsKeyFile, Path.Combine(paths.Tls, $"{endpoint}-key.pem"));
        var revocations = Path.Combine(paths.Tls, "ca-crl.pem");
        if (options.TlsRevocationListFile.Length > 0 && File.Exists(options.TlsRevocationListFile))
        {
            Copy(options.TlsRevocationListFile, revocations);
        }
        else
        {
            File.Delete(revocations);
        }
    }

    private static void Copy(string from, string to)
    {
        var bytes = File.ReadAllBytes(from);
        PrivateFile.Replace(to, stream => stream.Write(bytes));
    }

    private static void NotePlain(ILogger logger, QemuOptions options)
    {
        if (Interlocked.Exchange(ref _plainNoted, 1) == 0)
        {
            logger.LogWarning(Off, "This host has no TLS material of its pool ({Certificate}): migration streams and NBD exports are plain TCP, unauthenticated",
                options.TlsCertificateFile.Length > 0 ? options.TlsCertificateFile : "Corral:Qemu:TlsCertificateFile not set");
        }
    }
}
