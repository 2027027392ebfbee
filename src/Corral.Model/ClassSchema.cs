namespace Corral.Model;

/// <summary>A XenAPI class: its wire name (<c>VM</c>, <c>host_metrics</c>) and its fields.</summary>
public sealed class ClassSchema
{
    private readonly Dictionary<string, FieldSchema> _byName;

    public ClassSchema(string name, IEnumerable<FieldSchema> fields)
    {
        Name = name;
        var common = new[] { new FieldSchema("uuid", FieldType.String, FieldAccess.RO) };
        Fields = common.Concat(fields.Where(f => f.Name != "uuid")).ToList();
        _byName = Fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
    }

    /// <summary>The class name as the XenAPI spells it in method names (<c>VM.get_record</c>).</summary>
    public string Name { get; }

    public IReadOnlyList<FieldSchema> Fields { get; }

    public bool HasNameLabel => _byName.ContainsKey("name_label");

    public FieldSchema? Find(string fieldName) => _byName.GetValueOrDefault(fieldName);

    public FieldSchema Get(string fieldName) =>
        Find(fieldName) ?? throw new KeyNotFoundException($"{Name} has no field {fieldName}");
}
