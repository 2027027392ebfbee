namespace Corral.Model;

/// <summary>Where a class or message is in xapi's lifecycle.</summary>
public enum Lifecycle
{
    Published,
    Deprecated,
    Prototyped,

    /// <summary>Gone from xapi: calling it answers <c>MESSAGE_REMOVED</c>.</summary>
    Removed,
}

/// <summary>A XenAPI class: its wire name (<c>VM</c>, <c>host_metrics</c>), fields and messages, as xapi's datamodel has them.</summary>
public sealed class ClassSchema
{
    private readonly Dictionary<string, FieldSchema> _byName;

    public ClassSchema(string name, IEnumerable<FieldSchema> fields, IEnumerable<MessageSchema>? messages = null, Lifecycle lifecycle = Lifecycle.Published)
    {
        Name = name;
        Lifecycle = lifecycle;
        Fields = fields.Select(f => CorralDefaults.Apply(name, f)).ToList();
        _byName = Fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
        Messages = messages?.ToList() ?? [];
    }

    /// <summary>The class name as the XenAPI spells it in method names (<c>VM.get_record</c>).</summary>
    public string Name { get; }

    public Lifecycle Lifecycle { get; }

    public IReadOnlyList<FieldSchema> Fields { get; }

    /// <summary>Every message of the class in the datamodel, the implicit ones (getters, setters, get_all...) included.</summary>
    public IReadOnlyList<MessageSchema> Messages { get; }

    public bool HasNameLabel => _byName.ContainsKey("name_label");

    public FieldSchema? Find(string fieldName) => _byName.GetValueOrDefault(fieldName);

    public FieldSchema Get(string fieldName) =>
        Find(fieldName) ?? throw new KeyNotFoundException($"{Name} has no field {fieldName}");

    public override string ToString() => Name;
}
