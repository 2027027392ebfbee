using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Operations;
using Corral.Cli.Output;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli;

/// <summary>
/// One run of xe: the command line (with XE_EXTRA_ARGS and <c>~/.xe</c> under it), the command's own checks (known
/// command, required parameters), the login (<c>session.login_with_password(user, password, "1.0", "xe")</c>,
/// following <c>HOST_IS_SLAVE</c> to the master), the command, the logout. Exit codes are xe's: 0 on success and for
/// the usage, 1 on any failure. As XenServer's xe, it talks HTTPS to port 443 unless told <c>--nossl</c> (plain HTTP,
/// port 80); <paramref name="connect"/> makes the connection for an endpoint, and decides which certificates to trust.
/// </summary>
public sealed class XeApplication(TextWriter stdout, TextWriter stderr, TextReader stdin, Func<Uri, IXenApiClient> connect, Func<string, string?> environment)
{
    public const string DefaultServer = "127.0.0.1";
    public const string DefaultUser = "root";
    public const string DefaultPassword = "null";
    public const int DefaultPort = 443;
    public const int DefaultNoSslPort = 80;

    public CommandRegistry Registry { get; init; } = CommandRegistry.CreateDefault();

    public async Task<int> RunAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        CliArguments args;
        try
        {
            args = CliArguments.Parse(argv, XeRcFile.SplitExtraArgs(environment("XE_EXTRA_ARGS")));
            ApplyRcFile(args);
            ReadPasswordFile(args);
        }
        catch (CliException ex)
        {
            return Fail(ex);
        }

        if (args.VersionRequested)
        {
            stdout.Write("ThinCLI protocol: 0.2\n");
            return 0;
        }

        if (args.HelpRequested || args.UsageComplaint is not null || args.Command.Length == 0)
        {
            if (args.UsageComplaint is not null)
            {
                stderr.Write(args.UsageComplaint + "\n");
            }

            stderr.Write(HelpCommand.ClientUsage);
            return 0;
        }

        var printer = new XePrinter(stdout, stderr, args.Minimal);
        IXenApiClient? client = null;
        XenApiSession? session = null;
        PoolCache? cache = null;
        try
        {
            var spec = Registry.Find(args.Command) ?? throw XeUsageError.UnknownCommand(args.Command);
            var parameters = new XeParams(args.Parameters);
            foreach (var required in spec.Required)
            {
                if (!parameters.Has(required))
                {
                    throw XeUsageError.RequiredParameter(required);
                }
            }

            if (!spec.Flags.HasFlag(CommandFlags.NoSession))
            {
                (client, session) = await LoginAsync(args, spec.Flags.HasFlag(CommandFlags.LocalLogin), cancellationToken);
            }

            session ??= new XenApiSession(new NoServer());
            cache = new PoolCache(session);
            await spec.Run(new CommandContext(parameters, session, cache, printer, stdin, Registry), cancellationToken);
            printer.Flush();
            if (session.IsLoggedIn)
            {
                await RememberMembersAsync(ServerOf(args), cache, cancellationToken);
            }

            return 0;
        }
        catch (XeMultipleFailure ex)
        {
            stdout.Write(ex.Message + "\n");
            return 1;
        }
        catch (CliException ex)
        {
            return Fail(ex);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.SessionAuthenticationFailed)
        {
            var user = ex.Parameters.Count > 0 ? ex.Parameters[0] : args.User ?? DefaultUser;
            return Fail(new XeUsageError("", user.Length == 0 ? "Username/password must be specified" : "Authentication failed"));
        }
        catch (XenApiException ex)
        {
            IReadOnlyList<string> parameters = ex.Parameters;
            try
            {
                parameters = await ErrorText.ConvertReferencesAsync(ex, cache, session, cancellationToken);
            }
            catch (Exception e) when (e is XenApiTransportException or OperationCanceledException)
            {
                // Print the error as it came.
            }

            stderr.Write(ErrorText.Render(ex.Code, parameters) + "\n");
            return 1;
        }
        catch (XenApiTransportException ex)
        {
            stderr.Write(ex.Message + "\n");
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Interrupted (Ctrl-C): xe exits with 1 and says nothing.
            return 1;
        }
        finally
        {
            if (session is { IsLoggedIn: true })
            {
                try
                {
                    await session.LogoutAsync(CancellationToken.None);
                }
                catch (Exception e) when (e is XenApiException or XenApiTransportException)
                {
                    // The command's outcome is what matters; a session left behind expires on the server.
                }
            }

            (client as IDisposable)?.Dispose();
        }
    }

    private int Fail(CliException ex)
    {
        stderr.Write(ex.Render() + "\n");
        return 1;
    }

    private void ApplyRcFile(CliArguments args)
    {
        var home = environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var path = Path.Combine(home, ".xe");
        if (!File.Exists(path))
        {
            return;
        }

        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        var entries = XeRcFile.Parse(lines, out var error);
        if (error is not null)
        {
            stderr.Write(error + "\n");
        }

        args.ApplyConfig(entries);
    }

    /// <summary>-pwf: the user name on the first line of the file, the password on the second, as xe reads it.</summary>
    private static void ReadPasswordFile(CliArguments args)
    {
        if (string.IsNullOrEmpty(args.PasswordFile))
        {
            return;
        }

        string[] lines;
        try
        {
            lines = File.ReadAllLines(args.PasswordFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"Error opening password file '{args.PasswordFile}'");
        }

        if (lines.Length < 2)
        {
            throw new CliException("Error: password file format: expecting username on the first line, password on the second line");
        }

        args.ApplyConfig([new("username", lines[0].TrimEnd('\r')), new("password", lines[1].TrimEnd('\r'))], overrideGiven: true);
    }

    private async Task<(IXenApiClient Client, XenApiSession Session)> LoginAsync(CliArguments args, bool local, CancellationToken cancellationToken)
    {
        var (server, port, secure) = ServerOf(args);
        var user = args.User ?? DefaultUser;
        var password = args.Password ?? DefaultPassword;
        var unreachable = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        (IXenApiClient Client, XenApiSession Session, string Address) connected;
        try
        {
            connected = await LoginToAsync(new(server, port, secure), user, password, local, unreachable, cancellationToken);
        }
        catch (XenApiTransportException ex) when (ex.CouldNotConnect && !local)
        {
            // The server, or the master it named, is gone (the pool master lost power): another member of the pool
            // names the new master once it is elected.
            unreachable.Add(ex.Server ?? server);
            if (await LoginToAnotherMemberAsync(PoolMembersCache.ForUser(environment).Read(server, port), new(server, port, secure), user, password, unreachable,
                    cancellationToken) is not { } other)
            {
                throw;
            }

            connected = other;
            stderr.Write($"Note: {ex.Server ?? server} does not answer; the command went to the pool master at {connected.Address}\n");
        }

        return (connected.Client, connected.Session);
    }

    /// <summary>Where xe connects: HTTPS on 443 by default, plain HTTP on 80 with <c>--nossl</c>, as XenServer's xe.</summary>
    private static Target ServerOf(CliArguments args)
    {
        var secure = args.NoSsl != true;
        return new(args.Server ?? DefaultServer, args.Port ?? (secure ? DefaultPort : DefaultNoSslPort), secure);
    }

    /// <summary>A server xe talks to, on a port, over HTTPS or not.</summary>
    private sealed record Target(string Server, int Port, bool Secure)
    {
        public Target At(string server) => this with { Server = server };
    }

    /// <summary>
    /// Logs in at a server, following <c>HOST_IS_SLAVE</c> to the master (unless that is known to be unreachable);
    /// returns where the session lives.
    /// </summary>
    private async Task<(IXenApiClient Client, XenApiSession Session, string Address)> LoginToAsync(Target target, string user, string password,
        bool local, IReadOnlySet<string> unreachable, CancellationToken cancellationToken)
    {
        try
        {
            return await LoginAtAsync(target, user, password, local, cancellationToken);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HostIsSlave && ex.Parameters.Count > 0 && ex.Parameters[0].Length > 0)
        {
            // A slave names its master: as xe run on a pool member does, the command goes to the master.
            var master = ex.Parameters[0];
            if (unreachable.Contains(master))
            {
                // It still names the master that just failed to answer: the pool has not elected another yet.
                throw new XenApiTransportException("Error: Connection refused (calling connect )") { CouldNotConnect = true, Server = master };
            }

            return await LoginAtAsync(target.At(master), user, password, false, cancellationToken);
        }
    }

    /// <summary>One login at one server; its connection is closed if the login fails.</summary>
    private async Task<(IXenApiClient Client, XenApiSession Session, string Address)> LoginAtAsync(Target target, string user, string password,
        bool local, CancellationToken cancellationToken)
    {
        var client = connect(JsonRpcXenApiClient.EndpointFor(target.Server, target.Port, target.Secure));
        var session = new XenApiSession(client);
        try
        {
            if (local)
            {
                await session.LocalLoginAsync(user, password, cancellationToken);
            }
            else
            {
                await session.LoginAsync(user, password, cancellationToken);
            }

            return (client, session, target.Server);
        }
        catch
        {
            (client as IDisposable)?.Dispose();
            throw;
        }
    }

    private async Task<(IXenApiClient Client, XenApiSession Session, string Address)?> LoginToAnotherMemberAsync(IEnumerable<string> members, Target target,
        string user, string password, HashSet<string> unreachable, CancellationToken cancellationToken)
    {
        foreach (var member in members.Where(m => !unreachable.Contains(m)))
        {
            try
            {
                return await LoginToAsync(target.At(member), user, password, false, unreachable, cancellationToken);
            }
            catch (XenApiTransportException ex) when (!ex.CertificateRejected)
            {
                // Gone too (or it named a master that is): the next.
                unreachable.Add(ex.Server ?? member);
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HostIsSlave)
            {
                // A member that knows no master yet (the pool is still electing one): the next.
            }
        }

        return null;
    }

    /// <summary>
    /// Keeps the addresses of the pool's hosts for <see cref="LoginToAnotherMemberAsync"/>, read after each command
    /// that succeeded, through its <see cref="PoolCache"/> (no call if the command read the hosts itself): a list read while the pool
    /// was being formed, or before a host joined, would leave out the very host that is master after a failure. Over
    /// HTTPS, the certificates of those hosts too, from the pool's <c>Certificate</c> records, so that reaching another
    /// host after a failover needs no new trust on first use.
    /// </summary>
    private async Task RememberMembersAsync(Target server, PoolCache cache, CancellationToken cancellationToken)
    {
        var members = PoolMembersCache.ForUser(environment);
        if (!members.IsKept)
        {
            return;
        }

        try
        {
            var hosts = await cache.AllAsync("host", cancellationToken);
            var addresses = hosts.Select(h => h.Str("address")).Where(a => a.Length > 0).ToList();
            if (addresses.Count > 0)
            {
                members.Write(server.Server, server.Port, addresses);
            }

            if (server.Secure)
            {
                await LearnCertificatesAsync(server.Port, hosts, cache, cancellationToken);
            }
        }
        catch (Exception e) when (e is XenApiException or XenApiTransportException)
        {
            // Only a convenience: the command ran anyway.
        }
    }

    /// <summary>The pool's host certificates, read over a connection xe already trusts, as the certificates of the hosts' addresses.</summary>
    private async Task LearnCertificatesAsync(int port, IReadOnlyList<XenRecord> hosts, PoolCache cache, CancellationToken cancellationToken)
    {
        var certificates = await cache.AllAsync("Certificate", cancellationToken);
        var learnt = new List<(string Server, int Port, string Fingerprint)>();
        foreach (var certificate in certificates.Where(c => c.Str("type") == "host" && c.Str("fingerprint").Length > 0))
        {
            if (hosts.FirstOrDefault(h => h.Ref == certificate.Str("host")) is { } host && host.Str("address").Length > 0)
            {
                learnt.Add((host.Str("address"), port, certificate.Str("fingerprint")));
            }
        }

        KnownServers.ForUser(environment).Update(learnt);
    }

    /// <summary>The "server" of a command that needs none (help): any call is a bug.</summary>
    private sealed class NoServer : IXenApiClient
    {
        public Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken) =>
            throw new InvalidOperationException($"{method} called by a command that runs without a server");
    }
}
