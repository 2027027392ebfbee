using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Corral.ModelGen;

/// <summary>
/// The parameter defaults of xapi's messages, read from its IDL sources: each <c>call ~name:"..."</c> with
/// <c>~versioned_params:[{param_name= ...; param_default= Some (...)}; ...]</c>. xenapi.json does not carry them,
/// yet they decide which shorter argument lists xapi's dispatcher accepts.
/// </summary>
internal sealed partial class OcamlParameterDefaults(string constantsSource)
{
    private readonly List<Declaration> _declarations = [];

    private sealed record Declaration(string Call, IReadOnlyList<string> Names, IReadOnlyList<JsonNode?> Defaults)
    {
        public bool Used { get; set; }
    }

    public int Count => _declarations.Count;

    public IEnumerable<string> Unused => _declarations.Where(d => !d.Used && d.Defaults.Any(x => x is not null))
        .Select(d => $"{d.Call}({string.Join(", ", d.Names)})");

    private readonly List<string> _sources = [];

    /// <summary>Adds one IDL source; a record may be based on one in another source (<c>{host_param with ...}</c>).</summary>
    public void Add(string source) => _sources.Add(source);

    /// <summary>Reads every declaration of the sources added.</summary>
    public void Read()
    {
        foreach (var source in _sources)
        {
            Read(source);
        }
    }

    private void Read(string source)
    {
        foreach (Match m in VersionedParams().Matches(source))
        {
            var call = CallStart().Match(source, m.Index);
            var name = call.Success ? CallName().Match(source, call.Index) : null;
            if (name is null || !name.Success)
            {
                continue;
            }

            var list = Bracketed(source, m.Index + m.Length);
            var names = new List<string>();
            var defaults = new List<JsonNode?>();
            foreach (var record in Records(list).Select(Resolve))
            {
                names.Add(ParamName().Matches(record)[^1].Groups[1].Value);
                defaults.Add(DefaultOf(record));
            }

            _declarations.Add(new Declaration(name.Groups[1].Value, names, defaults));
        }
    }

    /// <summary>The defaults of the message's parameters, or null when no declaration with these names is known.</summary>
    public IReadOnlyList<JsonNode?>? Find(string message, IReadOnlyList<string> parameterNames)
    {
        var declaration = _declarations.FirstOrDefault(d => d.Call == message && d.Names.Count >= parameterNames.Count
            && d.Names.Take(parameterNames.Count).SequenceEqual(parameterNames));
        if (declaration is null)
        {
            return null;
        }

        declaration.Used = true;
        return declaration.Defaults.Take(parameterNames.Count).Select(d => d?.DeepClone()).ToList();
    }

    /// <summary>
    /// A record written as an update of a named one (<c>{host_param with param_release= ...}</c>): the named record's
    /// fields, then the update's, so that a later <c>param_name</c> or <c>param_default</c> wins.
    /// </summary>
    private string Resolve(string record)
    {
        var m = RecordUpdate().Match(record);
        if (!m.Success)
        {
            return record;
        }

        foreach (var source in _sources)
        {
            var let = Regex.Match(source, $@"let\s+{Regex.Escape(m.Groups[1].Value)}\s*=\s*\{{");
            if (let.Success)
            {
                var based = Records(source[(let.Index + let.Length - 1)..]).First();
                return based[..^1] + "; " + record[(m.Index + m.Length)..];
            }
        }

        throw new InvalidDataException($"record {m.Groups[1].Value} is not defined in the IDL sources");
    }

    /// <summary>The <c>param_default= Some (...)</c> of a record, or null for <c>None</c>.</summary>
    private JsonNode? DefaultOf(string record)
    {
        var m = ParamDefault().Matches(record).LastOrDefault();
        if (m is null)
        {
            throw new InvalidDataException($"no param_default in {record}");
        }

        var rest = record.AsSpan(m.Index + m.Length).TrimStart();
        if (rest.StartsWith("None", StringComparison.Ordinal))
        {
            return null;
        }

        var open = rest.IndexOf('(');
        var depth = 0;
        for (var i = open; i < rest.Length; i++)
        {
            depth += rest[i] switch { '(' => 1, ')' => -1, _ => 0 };
            if (depth == 0)
            {
                return Value(rest[(open + 1)..i].ToString().Trim());
            }
        }

        throw new InvalidDataException($"unbalanced param_default in {record}");
    }

    private JsonNode Value(string expression)
    {
        var m = Constructor().Match(expression);
        if (!m.Success)
        {
            throw new InvalidDataException($"unknown parameter default: {expression}");
        }

        var argument = m.Groups[2].Value.Trim();
        return m.Groups[1].Value switch
        {
            "VString" => JsonValue.Create(argument == "null_ref" ? "OpaqueRef:NULL" : Unquote(argument)),
            "VRef" => JsonValue.Create(argument is "null_ref" or "\"\"" ? "OpaqueRef:NULL" : Unquote(argument)),
            "VBool" => JsonValue.Create(bool.Parse(Constant(argument))),
            "VInt" => JsonValue.Create(long.Parse(Constant(argument).TrimEnd('L'), CultureInfo.InvariantCulture)),
            "VFloat" => JsonValue.Create(double.Parse(Constant(argument).TrimEnd('.'), CultureInfo.InvariantCulture)),
            "VEnum" => JsonValue.Create(Unquote(argument)),
            "VMap" when argument == "[]" => new JsonObject(),
            "VSet" when argument == "[]" => new JsonArray(),
            "VDateTime" when argument == "Date.epoch" => JsonValue.Create("19700101T00:00:00Z"),
            _ => throw new InvalidDataException($"unknown parameter default: {expression}"),
        };
    }

    /// <summary>Resolves <c>Constants.name</c> from xapi's constants module; a literal stays as it is.</summary>
    private string Constant(string argument)
    {
        if (!argument.StartsWith("Constants.", StringComparison.Ordinal))
        {
            return argument;
        }

        var name = argument["Constants.".Length..];
        var m = Regex.Match(constantsSource, $@"let {Regex.Escape(name)} = ([^\s]+)");
        return m.Success ? m.Groups[1].Value : throw new InvalidDataException($"{argument} is not in the constants source");
    }

    private static string Unquote(string text) =>
        text.Length >= 2 && text[0] == '"' && text[^1] == '"' ? text[1..^1] : text;

    /// <summary>The text of the OCaml list that starts at <paramref name="start"/> (a '['), without its brackets.</summary>
    private static string Bracketed(string source, int start)
    {
        var open = source.IndexOf('[', start);
        var depth = 0;
        var inString = false;
        for (var i = open; i < source.Length; i++)
        {
            var c = source[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            switch (c)
            {
                case '"':
                    inString = true;
                    break;
                case '[':
                    depth++;
                    break;
                case ']' when --depth == 0:
                    return source[(open + 1)..i];
            }
        }

        throw new InvalidDataException("unterminated versioned_params list");
    }

    /// <summary>The top-level <c>{ ... }</c> records of a list's text.</summary>
    private static IEnumerable<string> Records(string list)
    {
        var depth = 0;
        var start = -1;
        var inString = false;
        for (var i = 0; i < list.Length; i++)
        {
            var c = list[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (c == '"')
            {
                inString = true;
            }
            else if (c == '{' && depth++ == 0)
            {
                start = i;
            }
            else if (c == '}' && --depth == 0)
            {
                yield return list[start..(i + 1)];
            }
        }
    }

    [GeneratedRegex(@"^\{\s*([a-z_][A-Za-z0-9_']*)\s+with\b")]
    private static partial Regex RecordUpdate();

    [GeneratedRegex(@"~versioned_params\s*:")]
    private static partial Regex VersionedParams();

    [GeneratedRegex(@"\bcall\s+~", RegexOptions.RightToLeft)]
    private static partial Regex CallStart();

    [GeneratedRegex(@"\G[\s\S]*?~name\s*:\s*""([^""]+)""")]
    private static partial Regex CallName();

    [GeneratedRegex(@"param_name\s*=\s*""([^""]+)""")]
    private static partial Regex ParamName();

    [GeneratedRegex(@"param_default\s*=")]
    private static partial Regex ParamDefault();

    [GeneratedRegex(@"^(V[A-Za-z]+)\s+([\s\S]+)$")]
    private static partial Regex Constructor();
}
