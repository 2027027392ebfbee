using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;

namespace Corral.Cli.Operations;

/// <summary>
/// The commands xe generates for every class (cli_operations.ml <c>make_param_funs</c>): <c>&lt;class&gt;-list</c>,
/// <c>-param-list</c>, <c>-param-get</c>, and where the class has writable parameters <c>-param-set</c>,
/// <c>-param-add</c>, <c>-param-remove</c>, <c>-param-clear</c>.
/// </summary>
public static class ClassCommands
{
    public static void Register(CommandRegistry registry)
    {
        foreach (var cls in XeClasses.All)
        {
            Register(registry, cls);
        }
    }

    private static void Register(CommandRegistry registry, XeClass cls)
    {
        var visible = cls.Fields.Where(f => !f.Hidden).ToList();
        var setFilters = visible.Where(f => f.IsSet).Select(f => f.Name + ":contains");
        registry.Add(new($"{cls.Name}-list", [], ["params", "database:", .. visible.Select(f => f.Name), .. setFilters],
            $"Lists all the {cls.Plural}, filtering on the optional arguments. To filter on map parameters, use the syntax 'map-param:key=value'",
            cls.StandardList ? CommandFlags.Standard : CommandFlags.None, (c, ct) => ListAsync(c, cls, ct)));
        registry.Add(new($"{cls.Name}-param-list", ["uuid"], ["database:"],
            "Lists all the parameters of the object specified by the uuid.", CommandFlags.None, (c, ct) => ParamListAsync(c, cls, ct)));
        registry.Add(new($"{cls.Name}-param-get", ["uuid", "param-name"], ["param-key", "database:"],
            "Gets the parameter specified of the object. If the parameter is a map of key=value pairs, use 'param-key=<key>' to get the value associated with a particular key.",
            CommandFlags.None, (c, ct) => ParamGetAsync(c, cls, ct)));

        var settable = visible.Where(f => f.Setter is not null).Select(f => f.Name)
            .Concat(visible.Where(f => f.IsMapSettable).Select(f => f.Name + ":")).ToList();
        if (settable.Count > 0)
        {
            registry.Add(new($"{cls.Name}-param-set", ["uuid"], settable,
                "Sets the parameter specified. If param-value is not given, the parameter is set to a null value. To set a (key,value) pair in a map parameter, use the syntax 'map-param:key=value'.",
                CommandFlags.None, (c, ct) => ParamSetAsync(c, cls, ct)));
        }

        if (visible.Any(f => f.SetWrite is not null || f.MapWrite is not null))
        {
            registry.Add(new($"{cls.Name}-param-add", ["uuid", "param-name"], ["param-key"],
                "Adds to a set or map parameter. If the parameter is a set, use param-key=<key to add>. If the parameter is a map, pass the values to add as 'key=value' pairs.",
                CommandFlags.None, (c, ct) => ParamAddAsync(c, cls, ct)));
            registry.Add(new($"{cls.Name}-param-remove", ["uuid", "param-name", "param-key"], [],
                "Removes a member or a key,value pair from a set/map respectively.", CommandFlags.None, (c, ct) => ParamRemoveAsync(c, cls, ct)));
        }

        var clearable = visible.Where(f => f.Setter is not null || f.IsSet || f.IsMap).Select(f => f.Name).ToList();
        if (clearable.Count > 0)
        {
            registry.Add(new($"{cls.Name}-param-clear", ["uuid", "param-name"], [],
                $"Clears the specified parameter (param-name can be {string.Join(",", clearable)}).", CommandFlags.None, (c, ct) => ParamClearAsync(c, cls, ct)));
        }
    }

    /// <summary>Every record of the class, with the class's own filters and the command line's applied.</summary>
    public static async Task<IReadOnlyList<XenRecord>> SelectAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var all = (await c.Cache.AllAsync(cls.ApiClass, ct)).Where(cls.Listed).ToList();
        var filters = cls.DefaultFilters.Concat(c.Params.All.Where(p =>
            p.Key != "params" && !XeParams.StandardParams.Contains(p.Key) && !p.Key.StartsWith("database:", StringComparison.Ordinal)));
        return await c.Records.FilterAsync(cls, all, filters, ct);
    }

    private static async Task ListAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var selected = await SelectAsync(c, cls, ct);
        // xe's --all prints every record of the class, whatever the filters.
        var records = c.Params.Bool("all") ? (await c.Cache.AllAsync(cls.ApiClass, ct)).Where(cls.Listed).ToList() : selected;
        var fields = RecordEngine.Select(cls, c.Params.Get("params"), cls.DefaultListParams);
        await PrintAsync(c, records, fields, inList: true, ct);
    }

    /// <summary>Prints records as a table of the given fields.</summary>
    public static async Task PrintAsync(CommandContext c, IReadOnlyList<XenRecord> records, IReadOnlyList<XeField> fields, bool inList, CancellationToken ct)
    {
        await c.Records.PrepareAsync(records, fields, ct);
        var rows = new List<IReadOnlyList<KeyValuePair<string, string>>>();
        foreach (var record in records)
        {
            rows.Add(await c.Records.RowAsync(record, fields, inList, ct));
        }

        c.Printer.Table(rows);
    }

    /// <summary>xe's record by uuid: <c>&lt;class&gt;.get_by_uuid</c> then <c>&lt;class&gt;.get_record</c>.</summary>
    public static async Task<XenRecord> GetByUuidAsync(CommandContext c, string apiClass, string uuid, CancellationToken ct)
    {
        var reference = await c.CallForStringAsync($"{apiClass}.get_by_uuid", ct, uuid);
        var fields = XenValue.AsRecord(await c.CallAsync($"{apiClass}.get_record", ct, reference));
        return new XenRecord(apiClass, reference, fields);
    }

    private static async Task ParamListAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        await PrintAsync(c, [record], cls.Fields, inList: false, ct);
    }

    private static async Task ParamGetAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        var name = c.Params.Required("param-name");
        var field = cls.Find(name) ?? throw new XeMissingParameter(name);
        await c.Records.PrepareAsync([record], [field], ct);
        var context = c.Records.Context(record);
        if (c.Params.Get("param-key") is { } key && field.GetMap is { } getMap)
        {
            foreach (var (k, v) in getMap(context))
            {
                if (k == key)
                {
                    c.Printer.Line(v);
                    return;
                }
            }

            throw new XeFailure($"Key {key} not found in map");
        }

        var value = await field.ValueAsync(context, ct) ?? throw new XeMissingParameter(name);
        c.Printer.Line(value);
    }

    /// <summary>Which parameter a <c>param-set</c> key names: the field, and the map key for <c>map:key</c> (or the old <c>map-key</c>).</summary>
    private static (XeField Field, string? MapKey) ResolveForSet(XeClass cls, string key)
    {
        if (cls.Find(key) is { } exact)
        {
            return (exact, null);
        }

        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            var field = cls.Find(key[..colon]) ?? throw new XeFailure($"Unknown field '{key}'");
            return field.IsSet ? throw new XeFailure("Cannot param-set on set fields")
                : field.IsMap ? (field, key[(colon + 1)..])
                : throw new XeFailure($"Field '{field.Name}' is not a set or map");
        }

        var map = cls.Fields.Where(f => f.IsMap && key.StartsWith(f.Name + "-", StringComparison.Ordinal)).MaxBy(f => f.Name.Length);
        if (map is not null)
        {
            return (map, key[(map.Name.Length + 1)..]);
        }

        return cls.Fields.Any(f => f.IsSet && key.StartsWith(f.Name + "-", StringComparison.Ordinal))
            ? throw new XeFailure("Cannot param-set on set fields")
            : throw new XeFailure($"Unknown field '{key}'");
    }

    /// <summary>
    /// xe's p_set: each <c>name=value</c> through the parameter's setter; each <c>map:key=value</c> through the map's
    /// own per-key setter, else remove-then-add, else gathered and written whole once all are read.
    /// </summary>
    private static async Task ParamSetAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        var keysOf = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var wholeMaps = new List<(XeField Field, List<KeyValuePair<string, string>> Pairs)>();
        foreach (var (key, value) in c.Params.All)
        {
            if (key == "uuid" || XeParams.StandardParams.Contains(key))
            {
                continue;
            }

            var (field, mapKey) = ResolveForSet(cls, key);
            if (mapKey is null)
            {
                await SetFieldAsync(c, record, field, key, value, ct);
            }
            else if (field.MapSetInMap is { } setInMap)
            {
                await setInMap.Set(c.Session, record.Ref, mapKey, value, ct);
            }
            else if (field.MapReplace is not null)
            {
                var entry = wholeMaps.FindIndex(m => m.Field == field);
                if (entry < 0)
                {
                    wholeMaps.Add((field, []));
                    entry = wholeMaps.Count - 1;
                }

                wholeMaps[entry].Pairs.Insert(0, new(mapKey, value));
            }
            else
            {
                var writer = field.MapWrite ?? throw new XeFailure($"Map field '{field.Name}' is read-only.");
                if (writer.CheckKey?.Invoke(mapKey) is { } complaint)
                {
                    throw new XeFailure(complaint);
                }

                if (!keysOf.TryGetValue(field.Name, out var keys))
                {
                    keys = field.GetMap!(c.Records.Context(record)).Select(kv => kv.Key).ToList();
                    keysOf[field.Name] = keys;
                }

                if (keys.Contains(mapKey))
                {
                    await writer.Remove(c.Session, record.Ref, mapKey, ct);
                }

                await writer.Add(c.Session, record.Ref, mapKey, value, ct);
                keys.Add(mapKey);
            }
        }

        foreach (var (field, pairs) in wholeMaps)
        {
            await field.MapReplace!.Replace(c.Session, record.Ref, pairs, ct);
        }
    }

    private static async Task SetFieldAsync(CommandContext c, XenRecord record, XeField field, string key, string value, CancellationToken ct)
    {
        if (field.Setter is not { } setter)
        {
            throw field.MapWrite is not null
                ? new XeFailure($"Field '{key}' is a map or set. use the 'name:key=value' syntax.")
                : new XeFailure($"Field '{key}' is read-only.");
        }

        var wire = await setter.ToWire(c.Session, value, ct);
        await c.CallAsync(setter.Method, ct, record.Ref, wire);
    }

    private static IReadOnlyList<KeyValuePair<string, string>> OtherParams(CommandContext c) =>
        c.Params.All.Where(p => p.Key is not ("uuid" or "param-name" or "param-key") && !XeParams.StandardParams.Contains(p.Key)).ToList();

    private static async Task ParamAddAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        var name = c.Params.Required("param-name");
        var field = cls.Find(name) ?? throw new XeMissingParameter(name);
        if (field.SetWrite is { } set)
        {
            var key = c.Params.Get("param-key")
                      ?? throw new XeFailure("When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>");
            await set.Add(c.Session, record.Ref, key, ct);
        }
        else if (field.MapWrite is { } map)
        {
            foreach (var (k, v) in OtherParams(c))
            {
                if (map.CheckKey?.Invoke(k) is { } complaint)
                {
                    throw new XeFailure(complaint);
                }

                await map.Add(c.Session, record.Ref, k, v, ct);
            }
        }
        else
        {
            throw new XeFailure(field.IsSet || field.IsMap ? "Parameter is read-only" : "Can only add to parameters of type Set or Map");
        }
    }

    private static async Task ParamRemoveAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        var name = c.Params.Required("param-name");
        var key = c.Params.Required("param-key");
        var field = cls.Find(name) ?? throw new XeMissingParameter(name);
        var context = c.Records.Context(record);
        if (field.IsSet && field.SetWrite is { } set)
        {
            if (!field.GetSet!(context).Contains(key))
            {
                throw new XeFailure($"Key {key} is not in the set");
            }

            await set.Remove(c.Session, record.Ref, key, ct);
        }
        else if (field.IsMap && field.MapWrite is { } map)
        {
            if (!field.GetMap!(context).Any(kv => kv.Key == key))
            {
                throw new XeFailure($"Key {key} is not in map");
            }

            await map.Remove(c.Session, record.Ref, key, ct);
        }
        else
        {
            throw new XeFailure(field.IsSet || field.IsMap ? "Cannot remove parameters from read-only map" : "Can only remove from parameters of type Set or Map");
        }
    }

    private static async Task ParamClearAsync(CommandContext c, XeClass cls, CancellationToken ct)
    {
        var record = await GetByUuidAsync(c, cls.ApiClass, c.Params.Required("uuid"), ct);
        var name = c.Params.Required("param-name");
        var field = cls.Find(name) ?? throw new XeMissingParameter(name);
        var context = c.Records.Context(record);
        if (field.IsSet && field.SetWrite is { } set)
        {
            foreach (var member in field.GetSet!(context))
            {
                await set.Remove(c.Session, record.Ref, member, ct);
            }
        }
        else if (field.MapClear is { } clear)
        {
            await c.CallAsync(clear.Method, ct, record.Ref, new Dictionary<string, string>());
        }
        else if (field.MapReplace is { } replace)
        {
            await replace.Replace(c.Session, record.Ref, [], ct);
        }
        else if (field.IsMap && field.MapWrite is { } map)
        {
            foreach (var (k, _) in field.GetMap!(context))
            {
                await map.Remove(c.Session, record.Ref, k, ct);
            }
        }
        else if (field.Setter is { } setter)
        {
            object? wire;
            try
            {
                wire = await setter.ToWire(c.Session, "", ct);
            }
            catch (CliException)
            {
                throw new XeFailure("Cannot clear this parameter");
            }

            await c.CallAsync(setter.Method, ct, record.Ref, wire);
        }
        else
        {
            throw new XeFailure("Can only clear RW parameters");
        }
    }
}
