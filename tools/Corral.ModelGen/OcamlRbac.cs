using System.Text.RegularExpressions;

namespace Corral.ModelGen;

/// <summary>
/// Reads from xapi's IDL the permissions that <c>doc/data/xenapi.json</c> leaves out, as xapi's RBAC generator
/// (<c>ocaml/idl/ocaml_backend/gen_rbac.ml</c>) makes them: one per message hidden from the documentation (its
/// <c>~allowed_roles</c>), one per protected key of a map message (<c>&lt;message&gt;/key:&lt;key&gt;</c>, from a
/// call's or an RW field's <c>~map_keys_roles</c>), one per HTTP handler and sub-action (<c>http/&lt;action&gt;</c>)
/// and xapi's <c>extra_permissions</c>. Only classes of the datamodel facts count; permissions no role holds
/// (local root only) are left out, as no role can be given them.
/// </summary>
internal sealed partial class OcamlRbac
{
    private readonly List<OcamlText> _sources;
    private readonly OcamlText _constants;
    private readonly OcamlRoles _roles;
    private readonly Dictionary<string, string> _classNames = new(StringComparer.Ordinal);
    private readonly List<ObjectDeclaration> _objects = [];
    private readonly Dictionary<string, ClassFacts> _classes;
    private readonly Dictionary<string, PermissionFacts> _permissions = new(StringComparer.Ordinal);
    private readonly TextWriter _log;

    private sealed record ObjectDeclaration(OcamlText Source, int Start, int End, string ClassName, IReadOnlyList<string> Messages, string? DefaultRoles);

    private OcamlRbac(IReadOnlyList<OcamlText> sources, OcamlText constants, DatamodelFacts facts, TextWriter log)
    {
        _sources = [.. sources];
        _constants = constants;
        _log = log;
        _classes = facts.Classes.ToDictionary(c => c.Name, StringComparer.Ordinal);
        _roles = new OcamlRoles(sources.SingleOrDefault(s => s.Name == "datamodel_roles.ml")?.Text
            ?? throw new InvalidDataException("datamodel_roles.ml is not among the IDL sources"));
        foreach (var source in sources)
        {
            foreach (Match m in ClassConstant().Matches(source.Text))
            {
                _classNames.TryAdd(m.Groups[1].Value, m.Groups[2].Value);
            }
        }
    }

    public static RbacFacts Extract(IReadOnlyList<string> idlPaths, string constantsPath, string source, DatamodelFacts facts, TextWriter log)
    {
        var sources = idlPaths.Select(p => new OcamlText(Path.GetFileName(p), File.ReadAllText(p))).ToList();
        var constants = new OcamlText("constants.ml", File.ReadAllText(constantsPath));
        var rbac = new OcamlRbac(sources, constants, facts, log);
        foreach (var text in sources)
        {
            rbac.ReadObjects(text);
        }

        foreach (var text in sources)
        {
            rbac.ReadCalls(text);
            rbac.ReadFieldKeys(text);
        }

        rbac.ReadHttpActions();
        rbac.ReadExtraPermissions();
        var published = facts.Classes.SelectMany(c => c.Messages.Select(m => $"{c.Name}.{m.Name}")).ToHashSet(StringComparer.Ordinal);
        var permissions = rbac._permissions.Values.Where(p => p.Roles.Count > 0 && !published.Contains(p.Name)).ToList();
        foreach (var kind in permissions.GroupBy(p => p.Kind))
        {
            log.WriteLine($"RBAC: {kind.Count()} permissions of kind {kind.Key}");
        }

        log.WriteLine($"RBAC: {rbac._permissions.Values.Count(p => p.Roles.Count == 0)} permissions for the local root only, left out");
        var poolAdmin = PoolAdminUuid().Match(constants.Text);
        return new RbacFacts(source, poolAdmin.Success ? poolAdmin.Groups[1].Value : throw new InvalidDataException("no rbac_pool_admin_uuid in constants.ml"),
            rbac._roles.Roles, permissions);
    }

    private void ReadObjects(OcamlText source)
    {
        foreach (var start in source.Words("create_obj").Where(i => !LetBound(source, i)))
        {
            var end = source.ExpressionEnd(start, untilUnit: true);
            var name = source.Labelled(start, end, "name");
            var messages = source.Labelled(start, end, "messages");
            if (name is null || messages is null || !messages.StartsWith('['))
            {
                continue;
            }

            var className = name.StartsWith('"') ? OcamlText.Unquote(name)
                : _classNames.GetValueOrDefault(LastSegment(name)) ?? throw new InvalidDataException($"{source.Name}: unknown class name {name}");
            var idents = OcamlText.SplitTopLevel(OcamlText.Inside(messages), ';').Select(LastSegment).ToList();
            _objects.Add(new ObjectDeclaration(source, start, end, className, idents, source.Labelled(start, end, "messages_default_allowed_roles")));
        }
    }

    /// <summary>Each <c>call</c>: a hidden message becomes a permission, and so does each protected key of a map message.</summary>
    private void ReadCalls(OcamlText source)
    {
        foreach (var start in source.Words("call").Where(i => !LetBound(source, i) && !IsPartial(source, i) && NextIsLabel(source, i)))
        {
            var end = source.ExpressionEnd(start, untilUnit: true);
            var hidden = source.Labelled(start, end, "hide_from_docs") == "true" && source.Labelled(start, end, "db_only") != "true";
            var keys = source.Labelled(start, end, "map_keys_roles");
            if (!hidden && keys is null || source.Labelled(start, end, "name") is not { } literal || !literal.StartsWith('"'))
            {
                continue;
            }

            var name = OcamlText.Unquote(literal);
            var ident = source.LetBefore(start) ?? throw new InvalidDataException($"{source.Name}: call {name} is bound to no name");
            var owner = _objects.FirstOrDefault(o => o.Source == source && o.End > start && o.Messages.Contains(ident));
            if (owner is null || !_classes.ContainsKey(owner.ClassName))
            {
                _log.WriteLine($"RBAC: {name} ({source.Name}) belongs to no class of the datamodel facts, left out");
                continue;
            }

            var wireName = $"{owner.ClassName}.{name}";
            if (hidden)
            {
                var roles = source.Labelled(start, end, "allowed_roles") ?? PartialRoles(source, start) ?? owner.DefaultRoles
                    ?? throw new InvalidDataException($"{source.Name}: no roles for {wireName}");
                Add(wireName, "message", _roles.Evaluate(roles));
            }

            if (keys is not null)
            {
                AddKeys(wireName, KeyList(source, keys, start));
            }
        }
    }

    /// <summary>An RW map field's <c>~map_keys_roles</c> protect its implicit <c>add_to_</c> and <c>remove_from_</c> messages.</summary>
    private void ReadFieldKeys(OcamlText source)
    {
        foreach (Match m in MapKeysLabel().Matches(source.Text))
        {
            var field = source.Words("field").LastOrDefault(i => i < m.Index);
            var call = source.Words("call").LastOrDefault(i => i < m.Index);
            if (source.InString(m.Index) || field <= call)
            {
                continue;
            }

            var end = source.ExpressionEnd(field, untilUnit: false);
            var fieldName = FieldName(source, field, end);
            var owner = _objects.FirstOrDefault(o => o.Source == source && o.Start <= field && field < o.End)
                ?? _objects.FirstOrDefault(o => o.Source == source && o.Start > field);
            if (owner is null || !_classes.TryGetValue(owner.ClassName, out var cls)
                || !cls.Fields.Any(f => f.Name == fieldName && f.Qualifier == "RW")
                || !cls.Messages.Any(x => x.Name == "add_to_" + fieldName))
            {
                // Only an RW field has client-side add_to_/remove_from_ messages for its keys to guard.
                _log.WriteLine($"RBAC: the protected keys of field {owner?.ClassName}.{fieldName} (not RW) guard no implicit message, left out");
                continue;
            }

            var keys = KeyList(source, source.Atom(m.Index + m.Length), field);
            AddKeys($"{owner.ClassName}.add_to_{fieldName}", keys);
            AddKeys($"{owner.ClassName}.remove_from_{fieldName}", keys);
        }
    }

    private void ReadHttpActions()
    {
        var (source, list) = LetList("http_actions");
        foreach (var entry in OcamlText.SplitTopLevel(OcamlText.Inside(list), ';'))
        {
            var pair = OcamlText.SplitTopLevel(OcamlText.Inside(entry), ',');
            var details = OcamlText.SplitTopLevel(OcamlText.Inside(pair[1]), ',');
            if (pair.Count != 2 || details.Count != 6)
            {
                throw new InvalidDataException($"{source.Name}: unexpected http action {entry}");
            }

            var action = "http/" + StringValue(pair[0]);
            Add(action, "http", _roles.Evaluate(details[4]));
            foreach (var sub in OcamlText.SplitTopLevel(OcamlText.Inside(details[5]), ';'))
            {
                var subPair = OcamlText.SplitTopLevel(OcamlText.Inside(sub), ',');
                Add($"{action}/{StringValue(subPair[0])}", "http", _roles.Evaluate(subPair[1]));
            }
        }
    }

    private void ReadExtraPermissions()
    {
        var (_, list) = LetList("extra_permissions");
        foreach (var entry in OcamlText.SplitTopLevel(OcamlText.Inside(list), ';'))
        {
            var pair = OcamlText.SplitTopLevel(OcamlText.Inside(entry), ',');
            Add(StringValue(pair[0]), "extra", _roles.Evaluate(pair[1]));
        }
    }

    private void AddKeys(string wireName, IEnumerable<(string Key, string Roles)> keys)
    {
        foreach (var (key, roles) in keys)
        {
            Add($"{wireName}/key:{key}", "key", _roles.Evaluate(roles));
        }
    }

    private void Add(string name, string kind, IReadOnlyList<string> roles)
    {
        if (_permissions.TryGetValue(name, out var known))
        {
            roles = _roles.Roles.Select(r => r.Name).Where(r => roles.Contains(r) || known.Roles.Contains(r)).ToList();
        }

        _permissions[name] = new PermissionFacts(name, kind, roles);
    }

    /// <summary>A <c>[("key", roles); ...]</c> list, written in place or bound to a name earlier in the source.</summary>
    private static IEnumerable<(string Key, string Roles)> KeyList(OcamlText source, string expression, int usedAt)
    {
        var list = expression;
        if (!list.StartsWith('['))
        {
            var binding = Regex.Matches(source.Text[..usedAt], $@"\blet\s+{Regex.Escape(LastSegment(expression))}\s*=\s*").LastOrDefault()
                ?? throw new InvalidDataException($"{source.Name}: {expression} is not bound before its use");
            list = source.Atom(binding.Index + binding.Length);
        }

        return OcamlText.SplitTopLevel(OcamlText.Inside(list), ';').Select(entry =>
        {
            var pair = OcamlText.SplitTopLevel(OcamlText.Inside(entry), ',');
            return (OcamlText.Unquote(pair[0]), pair[1]);
        });
    }

    /// <summary>A field's name: its first positional string argument (not one given to a <c>~label:</c>).</summary>
    private static string FieldName(OcamlText source, int start, int end)
    {
        var depth = 0;
        for (var i = start; i < end; i++)
        {
            if (source.InString(i))
            {
                var literal = source.Atom(i);
                if (depth == 0 && !source.Text[start..i].TrimEnd().EndsWith(':'))
                {
                    return OcamlText.Unquote(literal);
                }

                i += literal.Length - 1;
                continue;
            }

            depth += source.Text[i] switch { '(' or '[' or '{' => 1, ')' or ']' or '}' => -1, _ => 0 };
        }

        throw new InvalidDataException($"{source.Name}: a field at {start} has no name");
    }

    /// <summary>The roles of the nearest <c>let call = call ... ~allowed_roles:...</c> of the same module before the call.</summary>
    private static string? PartialRoles(OcamlText source, int callAt)
    {
        var module = Regex.Matches(source.Text[..callAt], @"\bmodule\s+[A-Z]\w*\s*=\s*struct\b").LastOrDefault()?.Index ?? 0;
        var partial = source.Words("call").LastOrDefault(i => i > module && i < callAt && IsPartial(source, i), -1);
        if (partial < 0)
        {
            return null;
        }

        var next = Regex.Match(source.Text[partial..], @"\n\s*let\s");
        return source.Labelled(partial, partial + (next.Success ? next.Index : source.Text.Length - partial), "allowed_roles");
    }

    private (OcamlText Source, string List) LetList(string name)
    {
        foreach (var source in _sources)
        {
            var m = Regex.Match(source.Text, $@"\blet\s+{name}\s*=\s*");
            if (m.Success)
            {
                return (source, source.Atom(m.Index + m.Length));
            }
        }

        throw new InvalidDataException($"no {name} in the IDL sources");
    }

    /// <summary>A string literal, or a name bound to one somewhere in the sources (<c>Task.extra_permission_task_destroy_any</c>).</summary>
    private string StringValue(string expression)
    {
        if (expression.StartsWith('"'))
        {
            return OcamlText.Unquote(expression);
        }

        var name = LastSegment(expression);
        foreach (var source in expression.StartsWith("Constants.", StringComparison.Ordinal) ? [_constants] : _sources)
        {
            var m = Regex.Match(source.Text, $@"\blet\s+{Regex.Escape(name)}\s*=\s*(""[^""]*"")");
            if (m.Success)
            {
                return OcamlText.Unquote(m.Groups[1].Value);
            }
        }

        throw new InvalidDataException($"{expression} is bound to no string in the IDL sources");
    }

    private static bool LetBound(OcamlText source, int at) => Regex.IsMatch(source.Text[Math.Max(0, at - 20)..at], @"\blet\s+(rec\s+)?$");

    private static bool IsPartial(OcamlText source, int at) => Regex.IsMatch(source.Text[Math.Max(0, at - 30)..at], @"\blet\s+call\s*=\s*$");

    private static bool NextIsLabel(OcamlText source, int at)
    {
        var i = at + "call".Length;
        while (i < source.Text.Length && char.IsWhiteSpace(source.Text[i]))
        {
            i++;
        }

        return i < source.Text.Length && source.Text[i] == '~';
    }

    private static string LastSegment(string name) => name[(name.LastIndexOf('.') + 1)..].Trim();

    [GeneratedRegex(@"\blet\s+(_[a-z][a-z0-9_]*)\s*=\s*""([^""]+)""")]
    private static partial Regex ClassConstant();

    [GeneratedRegex(@"~map_keys_roles\s*:\s*")]
    private static partial Regex MapKeysLabel();

    [GeneratedRegex(@"\blet\s+rbac_pool_admin_uuid\s*=\s*""([^""]+)""")]
    private static partial Regex PoolAdminUuid();
}
