namespace Corral.Cli.Operations;

/// <summary>Every xe command the CLI offers, by name.</summary>
public sealed class CommandRegistry
{
    private readonly Dictionary<string, CommandSpec> _commands = new(StringComparer.Ordinal);

    public IEnumerable<CommandSpec> All => _commands.Values.OrderBy(c => c.Name, StringComparer.Ordinal);

    public void Add(CommandSpec spec) => _commands[spec.Name] = spec;

    public CommandSpec? Find(string name) => _commands.GetValueOrDefault(name);

    /// <summary>
    /// The commands of a Corral xe: each family registers its own. <paramref name="detachPollInterval"/> is how often
    /// vbd-unplug looks again at a VBD its guest refused to let go (xe's 5 seconds unless given).
    /// </summary>
    public static CommandRegistry CreateDefault(TimeSpan? detachPollInterval = null)
    {
        var registry = new CommandRegistry();
        ClassCommands.Register(registry);
        VmCommands.Register(registry);
        VmDeviceCommands.Register(registry);
        VmResizeCommands.Register(registry);
        StorageCommands.Register(registry);
        SnapshotCommands.Register(registry);
        XvaCommands.Register(registry);
        PlugCommands.Register(registry, detachPollInterval ?? PlugCommands.DetachPollInterval);
        SrProbeExtCommand.Register(registry);
        NetworkCommands.Register(registry);
        HostPoolCommands.Register(registry);
        AccessCommands.Register(registry);
        EventCommands.Register(registry);
        HelpCommand.Register(registry);
        return registry;
    }
}
