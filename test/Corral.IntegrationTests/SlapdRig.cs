using System.Diagnostics;
using System.DirectoryServices.Protocols;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Corral.IntegrationTests;

/// <summary>
/// A real OpenLDAP directory (Debian's slapd) of its own on a loopback port, its users and groups loaded with slapadd:
/// people under <c>ou=people</c> (inetOrgPerson and posixAccount, passwords hashed by slappasswd), groups
/// (groupOfNames) under <c>ou=groups</c>, whose members may be people or other groups. Stopped by its pid.
/// </summary>
public sealed class SlapdRig : IAsyncDisposable
{
    public const string BaseDn = "dc=corral,dc=test";

    private readonly string _directory;

    private SlapdRig(string directory, int port)
    {
        _directory = directory;
        Port = port;
    }

    public int Port { get; private set; }

    public string Uri => $"ldap://127.0.0.1:{Port}";

    public static string UserDn(string uid) => $"uid={uid},ou=people,{BaseDn}";

    public static string GroupDn(string cn) => $"cn={cn},ou=groups,{BaseDn}";

    /// <param name="users">Each user's login name and password.</param>
    /// <param name="groups">Each group's name and its members' DNs.</param>
    public static async Task<SlapdRig> StartAsync(IReadOnlyList<(string Uid, string Password)> users, IReadOnlyList<(string Cn, string[] Members)> groups)
    {
        var directory = Path.Combine(Path.GetTempPath(), "corral-slapd-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(directory, "data"));
        var rig = new SlapdRig(directory, FreePort());
        try
        {
            await File.WriteAllTextAsync(Path.Combine(directory, "slapd.conf"), $"""
                include /etc/ldap/schema/core.schema
                include /etc/ldap/schema/cosine.schema
                include /etc/ldap/schema/nis.schema
                include /etc/ldap/schema/inetorgperson.schema
                pidfile {directory}/slapd.pid
                modulepath /usr/lib/ldap
                moduleload back_mdb
                database mdb
                maxsize 16777216
                suffix "{BaseDn}"
                rootdn "cn=admin,{BaseDn}"
                rootpw {await Command.RunAsync("slappasswd", "-s", "admin-pw")}
                directory {directory}/data
                access to attrs=userPassword by self write by anonymous auth by * none
                access to * by * read

                """);
            var ldif = new StringBuilder($"dn: {BaseDn}\nobjectClass: dcObject\nobjectClass: organization\no: Corral test\ndc: corral\n\n");
            ldif.Append($"dn: ou=people,{BaseDn}\nobjectClass: organizationalUnit\nou: people\n\n");
            ldif.Append($"dn: ou=groups,{BaseDn}\nobjectClass: organizationalUnit\nou: groups\n\n");
            var number = 2000;
            foreach (var (uid, password) in users)
            {
                number++;
                ldif.Append($"dn: {UserDn(uid)}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {uid}\ncn: {uid} Tester\nsn: Tester\n");
                ldif.Append($"displayName: {uid} Tester\nuidNumber: {number}\ngidNumber: {number}\nhomeDirectory: /home/{uid}\n");
                ldif.Append($"userPassword: {await Command.RunAsync("slappasswd", "-s", password)}\n\n");
            }

            foreach (var (cn, members) in groups)
            {
                ldif.Append($"dn: {GroupDn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n");
                ldif.Append(string.Concat(members.Select(m => $"member: {m}\n"))).Append('\n');
            }

            var ldifPath = Path.Combine(directory, "data.ldif");
            await File.WriteAllTextAsync(ldifPath, ldif.ToString());
            await Command.RunAsync("slapadd", "-f", Path.Combine(directory, "slapd.conf"), "-l", ldifPath);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await Command.RunAsync("slapd", "-f", Path.Combine(directory, "slapd.conf"), "-h", rig.Uri + "/");
                    break;
                }
                catch (InvalidOperationException) when (attempt < 3)
                {
                    // The free port found was taken before slapd bound it (another test's etcd picks ports the same way).
                    rig.Port = FreePort();
                }
            }

            await rig.WaitListeningAsync();
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops slapd (by its pid), leaves the directory down for <paramref name="down"/>, and starts it again on the same port.</summary>
    public async Task RestartAsync(TimeSpan down)
    {
        await StopAsync();
        await Task.Delay(down);
        await Command.RunAsync("slapd", "-f", Path.Combine(_directory, "slapd.conf"), "-h", Uri + "/");
        await WaitListeningAsync();
    }

    /// <summary>Changes an entry as the directory's administrator would (an LDAP modify, bound as its root DN).</summary>
    public async Task ModifyAsync(string dn, params DirectoryAttributeModification[] changes)
    {
        await Task.Run(() =>
        {
            using var connection = new LdapConnection(new LdapDirectoryIdentifier("127.0.0.1", Port), new NetworkCredential($"cn=admin,{BaseDn}", "admin-pw"),
                AuthType.Basic);
            connection.SessionOptions.ProtocolVersion = 3;
            connection.Bind();
            connection.SendRequest(new ModifyRequest(dn, changes));
        });
    }

    /// <summary>One change of a modify: <paramref name="values"/> added, replaced or deleted.</summary>
    public static DirectoryAttributeModification Change(DirectoryAttributeOperation operation, string attribute, params string[] values)
    {
        var change = new DirectoryAttributeModification { Name = attribute, Operation = operation };
        foreach (var value in values)
        {
            change.Add(value);
        }

        return change;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task WaitListeningAsync()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new InvalidOperationException($"slapd did not listen on {Uri}");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task StopAsync()
    {
        var pidFile = Path.Combine(_directory, "slapd.pid");
        if (File.Exists(pidFile) && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), out var pid))
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
                await process.WaitForExitAsync();
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
    }
}
