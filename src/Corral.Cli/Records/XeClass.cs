using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>
/// An xe object class (<c>vm</c>, <c>template</c>, <c>host</c>...): the XenAPI class behind it, its parameters in
/// xapi's records.ml order, what <c>&lt;class&gt;-list</c> prints by default, and the filters it always applies
/// (<c>vm-list</c> only shows <c>is-a-template=false</c>).
/// </summary>
public sealed class XeClass
{
    public XeClass(string name, string apiClass, IReadOnlyList<XeField> fields, IReadOnlyList<string> defaultListParams,
        IReadOnlyList<KeyValuePair<string, string>>? defaultFilters = null, bool standardList = false, Func<XenRecord, bool>? listed = null)
    {
        Name = name;
        ApiClass = apiClass;
        AllFields = fields;
        Fields = fields.Where(IsAvailable).ToList();
        DefaultListParams = defaultListParams;
        DefaultFilters = defaultFilters ?? [];
        StandardList = standardList;
        Listed = listed ?? (_ => true);
    }

    public string Name { get; }

    public string ApiClass { get; }

    /// <summary>Every parameter xe defines for the class.</summary>
    public IReadOnlyList<XeField> AllFields { get; }

    /// <summary>The parameters whose XenAPI fields Corral's object model carries, in xe's order.</summary>
    public IReadOnlyList<XeField> Fields { get; }

    public IReadOnlyList<string> DefaultListParams { get; }

    public IReadOnlyList<KeyValuePair<string, string>> DefaultFilters { get; }

    /// <summary>Whether <c>&lt;class&gt;-list</c> is among xe help's common commands (vm, network, sr).</summary>
    public bool StandardList { get; }

    /// <summary>
    /// Which objects <c>&lt;class&gt;-list</c> reads at all, before any filter (xe reads roles with
    /// <c>get_all_records_where "subroles&lt;&gt;[]"</c>: the roles that group permissions, not the permissions).
    /// </summary>
    public Func<XenRecord, bool> Listed { get; }

    /// <summary>Whether Corral's object model has the XenAPI class at all: xe offers the class's commands only then.</summary>
    public bool IsOffered => XenClasses.Find(ApiClass) is not null;

    public string Plural => Name == "patch" ? "patches" : Name + "s";

    public XeField? Find(string name) => Fields.FirstOrDefault(f => f.Name == name);

    /// <summary>A parameter exists when every XenAPI field it reads is in Corral's object model.</summary>
    public static bool IsAvailable(XeField field) =>
        field.Requires.All(r => XenClasses.Find(r.ClassName)?.Find(r.Key) is not null);

    public override string ToString() => Name;
}
