using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>Short ways to declare the fields of one XenAPI class, each tied to the XenAPI field it reads.</summary>
public sealed class FieldBuilder(string apiClass)
{
    public string ApiClass => apiClass;

    private XeField Plain(string name, string key, Func<XenRecord, string> format) =>
        new() { Name = name, Get = c => format(c.Record), Requires = [(apiClass, key)] };

    public XeField Str(string name, string key) => Plain(name, key, r => r.Str(key));

    public XeField Int(string name, string key) => Plain(name, key, r => XeFormat.Int(r.Long(key)));

    public XeField Bool(string name, string key) => Plain(name, key, r => XeFormat.Bool(r.Bool(key)));

    public XeField Float(string name, string key) => Plain(name, key, r => XeFormat.Float(r.Double(key)));

    public XeField Date(string name, string key) => Plain(name, key, r => XeFormat.Date(r.Raw(key)));

    public XeField Enum(string name, string key, Func<string, string> spell) => Plain(name, key, r => spell(r.Str(key)));

    /// <summary>A map printed <c>k: v; ...</c>; <paramref name="readable"/> makes it a map parameter (M qualifier).</summary>
    public XeField Map(string name, string key, bool readable = true) => Plain(name, key, r => XeFormat.Map(r.Map(key))) with
    {
        GetMap = readable ? c => c.Record.Map(key) : null,
    };

    /// <summary>A set of strings; <paramref name="readable"/> makes it a set parameter (S qualifier).</summary>
    public XeField Strings(string name, string key, string separator = "; ", bool readable = true, Func<string, string>? spell = null) =>
        Plain(name, key, r => XeFormat.Set(r.Strings(key).Select(spell ?? (s => s)), separator)) with
        {
            GetSet = readable ? c => c.Record.Strings(key).Select(spell ?? (s => s)).ToList() : null,
        };

    /// <summary>The values of a map, as a set (current-operations: task → operation).</summary>
    public XeField MapValues(string name, string key, Func<string, string> spell) =>
        Plain(name, key, r => XeFormat.Set(r.Map(key).Select(kv => spell(kv.Value)))) with
        {
            GetSet = c => c.Record.Map(key).Select(kv => spell(kv.Value)).ToList(),
        };

    /// <summary>A reference printed as the uuid of what it points to.</summary>
    public XeField RefUuid(string name, string key, string targetClass) => new()
    {
        Name = name,
        Get = c => c.Cache.UuidOf(targetClass, c.Record.Str(key)),
        Requires = [(apiClass, key)],
        Needs = [new ClassNeed(targetClass, key)],
    };

    /// <summary>A reference printed as the name-label of what it points to.</summary>
    public XeField RefName(string name, string key, string targetClass) => new()
    {
        Name = name,
        Get = c => c.Cache.NameOf(targetClass, c.Record.Str(key)),
        Requires = [(apiClass, key)],
        Needs = [new ClassNeed(targetClass, key)],
    };

    /// <summary>A set of references printed as uuids; <paramref name="readable"/> makes it a set parameter.</summary>
    public XeField RefsUuids(string name, string key, string targetClass, bool readable = true) => new()
    {
        Name = name,
        Get = c => XeFormat.Set(c.Record.Strings(key).Select(r => c.Cache.UuidOf(targetClass, r))),
        GetSet = readable ? c => c.Record.Strings(key).Select(r => c.Cache.UuidOf(targetClass, r)).ToList() : null,
        Requires = [(apiClass, key)],
        Needs = [new ClassNeed(targetClass, key)],
    };

    /// <summary>A map whose values are references, printed as uuids (blobs).</summary>
    public XeField RefMapUuids(string name, string key, string targetClass) => new()
    {
        Name = name,
        Get = c => XeFormat.Map(c.Record.Map(key).Select(kv => new KeyValuePair<string, string>(kv.Key, c.Cache.UuidOf(targetClass, kv.Value)))),
        Requires = [(apiClass, key)],
        Needs = [new ClassNeed(targetClass, key)],
    };

    /// <summary>
    /// A value of a related object (metrics, guest metrics): <paramref name="none"/> when the object is missing, as
    /// xe prints it when the metrics record cannot be read.
    /// </summary>
    public XeField Related(string name, string refKey, string relatedClass, string relatedKey, Func<XenRecord, string> format, string none = XeFormat.NotInDatabase) => new()
    {
        Name = name,
        Get = c => c.Cache.Find(relatedClass, c.Record.Str(refKey)) is { } m ? format(m) : none,
        Requires = [(apiClass, refKey), (relatedClass, relatedKey)],
        Needs = [new ClassNeed(relatedClass, refKey)],
    };

    /// <summary>A map of a related object: printed, and readable by key (empty when the object is missing).</summary>
    public XeField RelatedMap(string name, string refKey, string relatedClass, string relatedKey) =>
        Related(name, refKey, relatedClass, relatedKey, m => XeFormat.Map(m.Map(relatedKey))) with
        {
            GetMap = c => c.Cache.Find(relatedClass, c.Record.Str(refKey))?.Map(relatedKey) ?? [],
        };

    /// <summary>A computed parameter.</summary>
    public XeField Computed(string name, Func<FieldContext, string> get, IReadOnlyList<string> requires, params ClassNeed[] needs) => new()
    {
        Name = name,
        Get = get,
        Requires = requires.Select(k => (apiClass, k)).ToList(),
        Needs = needs,
    };

    /// <summary>A parameter that takes a call to the server.</summary>
    public XeField Call(string name, Func<FieldContext, CancellationToken, Task<string?>> fetch, params string[] requires) => new()
    {
        Name = name,
        Fetch = fetch,
        Requires = requires.Select(k => (apiClass, k)).ToList(),
    };

    // ---- setters: the XenAPI setter and how the typed text becomes its argument ----

    public FieldSetter SetString(string field) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(text));

    public FieldSetter SetInt(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseInt(param, text)));

    public FieldSetter SetBytes(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseBytes(param, text)));

    /// <summary>A boolean read as xe's <c>safe_bool_of_string</c> (exactly true or false).</summary>
    public FieldSetter SetBool(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseStrictBool(param, text)));

    public FieldSetter SetFloat(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseFloat(param, text)));

    /// <summary>An enum: the typed name, matched without regard to case against the wire names.</summary>
    public FieldSetter SetEnum(string field, string param, params string[] wireNames) => new($"{apiClass}.set_{field}", (_, text, _) =>
    {
        var match = wireNames.FirstOrDefault(w => w.Equals(text, StringComparison.OrdinalIgnoreCase)
                                                  || w.Replace('_', '-').Equals(text, StringComparison.OrdinalIgnoreCase));
        return match is not null
            ? Task.FromResult<object?>(match)
            : throw new XeFailure($"Failed to parse parameter '{param}': expected one of {string.Join(", ", wireNames)}, got {text}");
    });

    /// <summary>A reference given as the uuid of its target (<c>&lt;class&gt;.get_by_uuid</c>); "" for none when allowed.</summary>
    public FieldSetter SetRef(string field, string targetClass, bool emptyIsNull = true) => new($"{apiClass}.set_{field}", async (session, text, ct) =>
        emptyIsNull && text.Length == 0 ? OpaqueRef.Null : await session.CallForStringAsync($"{targetClass}.get_by_uuid", ct, text).ConfigureAwait(false));

    public MapWriter MapRw(string field, Func<string, string?>? checkKey = null) => new($"{apiClass}.add_to_{field}", $"{apiClass}.remove_from_{field}", checkKey);

    public SetWriter SetRw(string field) => new($"{apiClass}.add_{field}", $"{apiClass}.remove_{field}");

    public MapClearer ClearMap(string field) => new($"{apiClass}.set_{field}");

    public static Task<string?> CallStrings(FieldContext c, string method, Func<object?, string> format, CancellationToken ct) =>
        CallAsync(c, method, format, ct);

    private static async Task<string?> CallAsync(FieldContext c, string method, Func<object?, string> format, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        return format(await c.Session.CallAsync(method, ct, c.Record.Ref).ConfigureAwait(false));
    }

    public static string Uuids(PoolCache cache, string targetClass, object? refs) =>
        XeFormat.Set(XenValue.AsStrings(refs).Select(r => cache.UuidOf(targetClass, r)));
}

/// <summary>Marking fields hidden, expensive, deprecated, settable...</summary>
public static class XeFieldExtensions
{
    public static XeField Rw(this XeField f, FieldSetter setter) => f with { Setter = setter };

    public static XeField Rw(this XeField f, MapWriter writer) => f with { MapWrite = writer };

    public static XeField Rw(this XeField f, SetWriter writer) => f with { SetWrite = writer };

    public static XeField Clearable(this XeField f, MapClearer clearer) => f with { MapClear = clearer };

    public static XeField AsHidden(this XeField f) => f with { Hidden = true };

    public static XeField AsExpensive(this XeField f) => f with { Expensive = true };

    public static XeField AsDeprecated(this XeField f) => f with { Deprecated = true };

    public static XeField AsCaseInsensitive(this XeField f) => f with { CaseInsensitive = true };

    public static XeField AsMap(this XeField f, Func<FieldContext, IReadOnlyList<KeyValuePair<string, string>>> getMap) => f with { GetMap = getMap };

    public static XeField AsSet(this XeField f, Func<FieldContext, IReadOnlyList<string>> getSet) => f with { GetSet = getSet };
}
