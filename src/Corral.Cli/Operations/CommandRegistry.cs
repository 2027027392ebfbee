namespace Corral.Cli.Operations;

/// <summary>Every xe command the CLI offers, by name.</summary>
public sealed class CommandRegistry
{
    private readonly Dictionary<string, CommandSpec> _commands = new(StringComparer.Ordinal);

    public IEnumerable<CommandSpec> All => _commands.Values.OrderBy(c => c.Name, StringComparer.Ordinal);

    public void Add(CommandSpec spec) => _commands[spec.Name] = spec;

    public CommandSpec? Find(string name) => _commands.GetValueOrDefault(name);

    /// <summary>The commands of a Corral xe: each family registers its own.</summary>
    public static CommandRegistry CreateDefault()
    {
        var registry = new CommandRegistry();
        ClassCommands.Register(registry);
        VmCommands.Register(registry);
        VmDeviceCommands.Register(registry);
        StorageCommands.Register(registry);
        AttachCommands.Register(registry);
        NetworkCommands.Register(registry);
        HostPoolCommands.Register(registry);
        EventCommands.Register(registry);
        HelpCommand.Register(registry);
        return registry;
    }
}
