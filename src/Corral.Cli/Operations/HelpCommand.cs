namespace Corral.Cli.Operations;

/// <summary>
/// xe help (cli_frontend.ml <c>rio_help</c>): the usage and the common commands; <c>help --all</c> every command (host
/// commands, VM commands, the rest); <c>help &lt;command&gt;</c> a command's parameters and description.
/// </summary>
public static class HelpCommand
{
    /// <summary>The usage newcli prints for no command or -help (on stderr, exit code 0).</summary>
    public const string ClientUsage = """
        Usage:
          xe <command>
            [ -s <server> ]            XenServer host
            [ -p <port> ]              XenServer port number
            [ -u <username> -pw <password> | -pwf <password file> ]
                                       User authentication (password or file)
            [ --nossl ]                Disable SSL/TLS
            [ --debug ]                Enable debug output
            [ --debug-on-fail ]        Enable debug output only on failure
            [ --minimal ]              Output only values in a comma-separated lists
            [ --traceparent <value> ]  Distributed tracing context
            [ --trace ]                Show task stacktrace on failure
            [ <other arguments> ... ]  Command-specific options

        A full list of commands can be obtained by running
          xe help -s <server> -p <port>

        """;

    private const string ServerUsage = """
        Usage:
          xe <command>
            [ -s <server> ]            XenServer host
            [ -p <port> ]              XenServer port number
            [ -u <username> -pw <password> | -pwf <password file> ]
                                       User authentication (password or file)
            [ --nossl ]                Disable SSL/TLS
            [ --debug ]                Enable debug output
            [ --debug-on-fail ]        Enable debug output only on failure
            [ --traceparent <value> ]  Distributed tracing context
            [ <other arguments> ... ]  Command-specific options

        To get help on a specific command:
          xe help <command>


        """;

    private const string VmSelectorsInfo =
        " VMs can be specified by filtering the full list of VMs on the values of zero or more fields. For example, specifying 'uuid=<some_uuid>' will select only the VM with that uuid, and 'power-state=halted' will select only VMs whose 'power-state' field is equal to 'halted'. The special pseudo-field 'vm' matches either of name-label or uuid. Where multiple VMs are matching, the option '--multiple' must be specified to perform the operation. The full list of fields that can be matched can be obtained by the command 'xe vm-list params=all'. If no parameters to select VMs are given, the operation will be performed on all VMs.";

    private const string HostSelectorsInfo =
        " Hosts can be specified by filtering the full list of hosts on the values of zero or more fields. For example, specifying 'uuid=<some_uuid>' will select only the host with that uuid, and 'enabled=true' will select only hosts whose 'enabled' field is equal to 'true'. The special pseudo-field 'host' matches any of hostname, name-label or uuid. Where multiple hosts are matching, and the operation can be performed on multiple hosts, the option '--multiple' must be specified to perform the operation. The full list of fields that can be matched can be obtained by the command 'xe host-list params=all'. If no parameters to select hosts are given, the operation will be performed on all hosts.";

    public static void Register(CommandRegistry r) =>
        r.Add(new("help", [], [], "Display help on a command.", CommandFlags.NoSession | CommandFlags.Hidden, (c, _) =>
        {
            Print(c, c.Registry);
            return Task.CompletedTask;
        }));

    private static void Print(CommandContext c, CommandRegistry registry)
    {
        var asked = c.Params.All.Where(p => p.Key is not ("server" or "username" or "password" or "port" or "minimal" or "all")).Select(p => p.Key).ToList();
        if (asked.Count > 0)
        {
            foreach (var name in asked)
            {
                if (registry.Find(name) is { } spec)
                {
                    c.Printer.Table([Describe(spec)]);
                }
                else
                {
                    c.Printer.Line($"Unknown command '{name}'");
                }
            }

            return;
        }

        var visible = registry.All.Where(s => !s.Flags.HasFlag(CommandFlags.Hidden)).Select(s => s).ToList();
        if (c.Params.Get("all") == "true")
        {
            var names = visible.Select(s => s.Name).ToList();
            if (c.Printer.Minimal)
            {
                c.Printer.List(names);
                return;
            }

            var hosts = names.Where(n => n.StartsWith("host-", StringComparison.Ordinal)).ToList();
            var vms = names.Where(n => n.StartsWith("vm-", StringComparison.Ordinal)).ToList();
            var others = names.Except(hosts).Except(vms).ToList();
            c.Printer.List([ServerUsage + "Full command list\n-----------------\n"]);
            c.Printer.List(MakeList(hosts));
            c.Printer.List(MakeList([""]));
            c.Printer.List(MakeList(vms));
            c.Printer.List(MakeList([""]));
            c.Printer.List(MakeList(others));
            return;
        }

        var common = visible.Where(s => s.Flags.HasFlag(CommandFlags.Standard)).Select(s => s.Name).ToList();
        if (c.Printer.Minimal)
        {
            c.Printer.List(common);
            return;
        }

        c.Printer.List([ServerUsage + "To get a full listing of commands:\n  xe help --all\n\nCommon command list\n-------------------\n"]);
        c.Printer.List(MakeList(common));
    }

    /// <summary>A command's help record: name, required and optional parameters, description.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Describe(CommandSpec spec)
    {
        var optional = spec.Optional.ToList();
        var description = spec.Help;
        if (spec.Flags.HasFlag(CommandFlags.VmSelectors))
        {
            optional.Add("<vm-selectors>");
            description += VmSelectorsInfo;
        }
        else if (spec.Flags.HasFlag(CommandFlags.HostSelectors))
        {
            optional.Add("<host-selectors>");
            description += HostSelectorsInfo;
        }

        return
        [
            new("command name        ", spec.Name),
            new("reqd params     ", string.Join(", ", spec.Required)),
            new("optional params ", string.Join(", ", optional)),
            new("description     ", description),
        ];
    }

    /// <summary>xe's <c>make_list</c>: names joined by ", " on lines indented by four, a new line before 74 columns.</summary>
    public static IReadOnlyList<string> MakeList(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
        {
            return [];
        }

        const string indent = "    ";
        var lines = new List<string>();
        var current = indent + names[0];
        foreach (var name in names.Skip(1))
        {
            if (current.Length + name.Length > 74)
            {
                lines.Add(current);
                current = indent + name;
            }
            else
            {
                current += ", " + name;
            }
        }

        lines.Add(current);
        return lines;
    }
}
