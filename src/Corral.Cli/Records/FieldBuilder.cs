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
    public XeField RefsUuids(string name, string key, string targetClass, bool readable = true, string separator = "; ") => new()
    {
        Name = name,
        Get = c => XeFormat.Set(c.Record.Strings(key).Select(r => c.Cache.UuidOf(targetClass, r)), separator),
        GetSet = readable ? c => c.Record.Strings(key).Select(r => c.Cache.UuidOf(targetClass, r)).ToList() : null,
        Requires = [(apiClass, key)],
        Needs = [new ClassNeed(targetClass, key)],
    };

    /// <summary>A set of references printed as the name-labels of what they point to.</summary>
    public XeField RefsNames(string name, string key, string targetClass, bool readable = true) => new()
    {
        Name = name,
        Get = c => XeFormat.Set(c.Record.Strings(key).Select(r => c.Cache.NameOf(targetClass, r))),
        GetSet = readable ? c => c.Record.Strings(key).Select(r => c.Cache.NameOf(targetClass, r)).ToList() : null,
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

    // ---- the parameters most classes share ----

    public XeField Uuid() => Str("uuid", "uuid");

    /// <summary>name-label, settable through <c>set_name_label</c> unless <paramref name="settable"/> is false.</summary>
    public XeField NameLabel(bool settable = true) => settable ? Str("name-label", "name_label").Rw(SetString("name_label")) : Str("name-label", "name_label");

    public XeField NameDescription(bool settable = true) =>
        settable ? Str("name-description", "name_description").Rw(SetString("name_description")) : Str("name-description", "name_description");

    /// <summary>other-config, a map the user can change key by key.</summary>
    public XeField OtherConfig() => Map("other-config", "other_config").Rw(MapRw("other_config"));

    /// <summary>allowed-operations, a set of the operations' names.</summary>
    public XeField AllowedOperations(Func<string, string>? spell = null) => Strings("allowed-operations", "allowed_operations", spell: spell);

    /// <summary>current-operations, the operations of the map (task → operation) as a set.</summary>
    public XeField CurrentOperations(Func<string, string>? spell = null) => MapValues("current-operations", "current_operations", spell ?? (s => s));

    /// <summary>
    /// A value read with a call of its own (a data source, a computed size) where xe prints <c>&lt;unknown&gt;</c> for
    /// any failure; left out when the server has no such call.
    /// </summary>
    public XeField Query(string name, Func<FieldContext, CancellationToken, Task<string>> read, params string[] requires) =>
        Call(name, async (c, ct) =>
        {
            if (c.Session is null)
            {
                return null;
            }

            try
            {
                return await read(c, ct);
            }
            catch (XenApiException ex) when (!XeField.IsUnoffered(ex))
            {
                return "<unknown>";
            }
        }, requires);

    /// <summary>
    /// A data source's value in KiB/s (xe's io_read_kbs / io_write_kbs): <paramref name="method"/>(owner, name)
    /// divided by 1024, where the owner is the object <paramref name="ownerKey"/> points to and the name is built from
    /// the record. Expensive, as in xe.
    /// </summary>
    public XeField DataSourceKbs(string name, string method, string ownerKey, Func<XenRecord, string> dataSource) =>
        Query(name, async (c, ct) =>
        {
            var value = await c.Session!.CallAsync(method, ct, c.Record.Str(ownerKey), dataSource(c.Record));
            return XeFormat.Float(XenValue.AsDouble(value) / 1024.0);
        }, ownerKey, "device").AsExpensive();

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

    /// <summary>An integer read as xe's <c>safe_i64_of_string</c>.</summary>
    public FieldSetter SetInt(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseInt(param, text)));

    /// <summary>An integer read with OCaml's bare <c>Int64.of_string</c> (a few old setters): xe fails as xapi does.</summary>
    public FieldSetter SetPlainInt(string field) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParsePlainInt(text)));

    public FieldSetter SetBytes(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseBytes(param, text)));

    /// <summary>A boolean read as xe's <c>safe_bool_of_string</c> (exactly true or false).</summary>
    public FieldSetter SetBool(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseStrictBool(param, text)));

    /// <summary>A boolean read with OCaml's bare <c>bool_of_string</c> (exactly true or false, xe's other error text).</summary>
    public FieldSetter SetPlainBool(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParsePlainBool(param, text)));

    public FieldSetter SetFloat(string field, string param) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.ParseFloat(param, text)));

    /// <summary>
    /// An enum read as xapi's generated <c>&lt;enum&gt;_of_string</c>: the wire name in any case, else
    /// <c>Expected one of 'a', 'b', got x</c>.
    /// </summary>
    public FieldSetter SetEnum(string field, params string[] wireNames) => SetParsed(field, text => XeValues.ParseEnum(text, wireNames));

    public FieldSetter SetEnum(string field, FieldType.EnumOf type) => SetEnum(field, [.. type.Values]);

    /// <summary>A value read by a parser of its own (xe's hand-written <c>of_string</c>s); the parser throws xe's error.</summary>
    public FieldSetter SetParsed(string field, Func<string, object?> parse) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult(parse(text)));

    /// <summary>A reference given as the uuid of its target (<c>&lt;class&gt;.get_by_uuid</c>); "" for none when allowed.</summary>
    public FieldSetter SetRef(string field, string targetClass, bool emptyIsNull = true) => new($"{apiClass}.set_{field}", async (session, text, ct) =>
        emptyIsNull && text.Length == 0 ? OpaqueRef.Null : await session.CallForStringAsync($"{targetClass}.get_by_uuid", ct, text));

    /// <summary>A set of strings given as a comma-separated list (xe's <c>get_words ','</c>).</summary>
    public FieldSetter SetWords(string field) => new($"{apiClass}.set_{field}", (_, text, _) => Task.FromResult<object?>(XeValues.Words(text).Cast<object?>().ToList()));

    /// <summary>A set of references given as comma-separated uuids of their targets.</summary>
    public FieldSetter SetRefs(string field, string targetClass) => new($"{apiClass}.set_{field}", async (session, text, ct) =>
    {
        var refs = new List<object?>();
        foreach (var uuid in XeValues.Words(text))
        {
            refs.Add(await session.CallForStringAsync($"{targetClass}.get_by_uuid", ct, uuid));
        }

        return refs;
    });

    /// <summary>The usual map: <c>add_to_&lt;field&gt;(self, key, value)</c> and <c>remove_from_&lt;field&gt;(self, key)</c>.</summary>
    public MapWriter MapRw(string field, Func<string, string?>? checkKey = null) => new(
        (session, self, key, value, ct) => session.CallAsync($"{apiClass}.add_to_{field}", ct, self, key, value),
        (session, self, key, ct) => session.CallAsync($"{apiClass}.remove_from_{field}", ct, self, key),
        checkKey);

    /// <summary>
    /// The usual set: <c>add_&lt;field&gt;(self, value)</c> and <c>remove_&lt;field&gt;(self, value)</c>, the typed text
    /// turned into the member by <paramref name="toWire"/> (a uuid into a reference, a number into an integer).
    /// </summary>
    public SetWriter SetRw(string field, WireValue? toWire = null, string? addMethod = null, string? removeMethod = null)
    {
        toWire ??= (_, text, _) => Task.FromResult<object?>(text);
        return new(
            async (session, self, text, ct) => await session.CallAsync(addMethod ?? $"{apiClass}.add_{field}", ct, self, await toWire(session, text, ct)),
            async (session, self, text, ct) => await session.CallAsync(removeMethod ?? $"{apiClass}.remove_{field}", ct, self, await toWire(session, text, ct)));
    }

    /// <summary>A member read from the typed text by <paramref name="parse"/> (which throws xe's error).</summary>
    public static WireValue Parse(Func<string, object?> parse) => (_, text, _) => Task.FromResult(parse(text));

    /// <summary>A member given as the uuid of the object it references.</summary>
    public static WireValue RefByUuid(string targetClass) => (session, text, ct) => session.CallAsync($"{targetClass}.get_by_uuid", ct, text);

    /// <summary>A set whose members are written by reading the set and writing it whole (<c>set_&lt;field&gt;</c>).</summary>
    public SetWriter SetRwWhole(string field, WireValue? toWire = null)
    {
        toWire ??= (_, text, _) => Task.FromResult<object?>(text);
        return new(
            async (session, self, text, ct) =>
            {
                var member = await toWire(session, text, ct);
                var members = XenValue.AsList(await session.CallAsync($"{apiClass}.get_{field}", ct, self)).ToList();
                if (!members.Any(m => Equals(m, member)))
                {
                    members.Insert(0, member);
                }

                await session.CallAsync($"{apiClass}.set_{field}", ct, self, members);
            },
            async (session, self, text, ct) =>
            {
                var member = await toWire(session, text, ct);
                var members = XenValue.AsList(await session.CallAsync($"{apiClass}.get_{field}", ct, self)).Where(m => !Equals(m, member)).ToList();
                await session.CallAsync($"{apiClass}.set_{field}", ct, self, members);
            });
    }

    public MapClearer ClearMap(string field) => new($"{apiClass}.set_{field}");

    /// <summary>A map whose keys each take a call of their own: <paramref name="method"/>(self, name, value).</summary>
    public MapEntrySetter SetInMap(string method) => new((session, self, key, value, ct) => session.CallAsync($"{apiClass}.{method}", ct, self, key, value));

    /// <summary>A map written whole by <c>set_&lt;field&gt;</c>; <paramref name="checkKey"/> refuses a key first.</summary>
    public MapReplacer ReplaceMap(string field, Func<string, string?>? checkKey = null) => new(async (session, self, map, ct) =>
    {
        foreach (var (key, _) in map)
        {
            if (checkKey?.Invoke(key) is { } complaint)
            {
                throw new XeFailure(complaint);
            }
        }

        var value = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, v) in map)
        {
            value[key] = v;
        }

        await session.CallAsync($"{apiClass}.set_{field}", ct, self, value);
    });

    public static Task<string?> CallStrings(FieldContext c, string method, Func<object?, string> format, CancellationToken ct) =>
        CallAsync(c, method, format, ct);

    private static async Task<string?> CallAsync(FieldContext c, string method, Func<object?, string> format, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        return format(await c.Session.CallAsync(method, ct, c.Record.Ref));
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

    public static XeField Rw(this XeField f, MapEntrySetter setter) => f with { MapSetInMap = setter };

    public static XeField Rw(this XeField f, MapReplacer replacer) => f with { MapReplace = replacer };

    public static XeField Clearable(this XeField f, MapClearer clearer) => f with { MapClear = clearer };

    public static XeField AsHidden(this XeField f) => f with { Hidden = true };

    public static XeField AsExpensive(this XeField f) => f with { Expensive = true };

    public static XeField AsDeprecated(this XeField f) => f with { Deprecated = true };

    public static XeField AsCaseInsensitive(this XeField f) => f with { CaseInsensitive = true };

    public static XeField AsMap(this XeField f, Func<FieldContext, IReadOnlyList<KeyValuePair<string, string>>> getMap) => f with { GetMap = getMap };

    public static XeField AsSet(this XeField f, Func<FieldContext, IReadOnlyList<string>> getSet) => f with { GetSet = getSet };
}
