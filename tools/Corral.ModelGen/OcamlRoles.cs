using System.Text.RegularExpressions;

namespace Corral.ModelGen;

/// <summary>
/// xapi's static roles as <c>ocaml/idl/datamodel_roles.ml</c> declares them: their names in decreasing order of
/// privilege, which are internal, and the <c>_R_*</c> role sets the IDL gives its messages (<c>_R_VM_OP</c> is every
/// role from pool-admin down to vm-operator), so that an IDL expression such as <c>_R_POOL_OP ++ _R_CLIENT_CERT</c>
/// can be turned into the roles it names.
/// </summary>
internal sealed partial class OcamlRoles
{
    private readonly Dictionary<string, IReadOnlyList<string>> _sets = new(StringComparer.Ordinal);

    public OcamlRoles(string rolesSource)
    {
        var text = new OcamlText("datamodel_roles.ml", rolesSource).Text;
        var names = RoleName().Matches(text).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
        var ordered = OrderedEntry().Matches(text)
            .Select(m => new RoleFacts(names.GetValueOrDefault(m.Groups[1].Value) ?? throw new InvalidDataException($"unknown role {m.Groups[1].Value}"),
                m.Groups[2].Value == "true"))
            .ToList();
        if (ordered.Count == 0)
        {
            throw new InvalidDataException("datamodel_roles.ml: no ordered list of roles found");
        }

        Roles = ordered;
        var all = ordered.Select(r => r.Name).ToList();
        foreach (Match m in RoleSet().Matches(text))
        {
            _sets[m.Groups[1].Value] = Set(m.Groups[2].Value.Trim(), names, all);
        }
    }

    /// <summary>The roles, most privileged first, as <c>Datamodel_roles.ordered</c> lists them.</summary>
    public IReadOnlyList<RoleFacts> Roles { get; }

    /// <summary>
    /// The roles an IDL role expression names: <c>_R_X</c> sets joined by <c>++</c>, possibly in parentheses, possibly
    /// qualified (<c>Datamodel_roles._R_POOL_OP</c>); in the order of <see cref="Roles"/>.
    /// </summary>
    public IReadOnlyList<string> Evaluate(string expression)
    {
        var roles = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in SetReference().Matches(expression))
        {
            roles.UnionWith(_sets.GetValueOrDefault(m.Groups[1].Value) ?? throw new InvalidDataException($"unknown role set {m.Value}"));
        }

        var rest = SetReference().Replace(expression, "").Replace("++", "", StringComparison.Ordinal).Trim('(', ')', ' ', '\n', '\r', '\t');
        if (rest.Length > 0 || roles.Count == 0 && !SetReference().IsMatch(expression))
        {
            throw new InvalidDataException($"not a role expression: {expression}");
        }

        return Roles.Select(r => r.Name).Where(roles.Contains).ToList();
    }

    private IReadOnlyList<string> Set(string definition, Dictionary<string, string> names, List<string> all)
    {
        if (SetReference().Match(definition) is { Success: true } alias && alias.Value == definition)
        {
            return _sets.GetValueOrDefault(alias.Groups[1].Value) ?? throw new InvalidDataException($"role set {definition} used before it is defined");
        }

        if (AtLeast().Match(definition) is { Success: true } gte)
        {
            var role = names.GetValueOrDefault(gte.Groups[1].Value) ?? throw new InvalidDataException($"unknown role {gte.Groups[1].Value}");
            return all.Take(all.IndexOf(role) + 1).ToList();
        }

        if (Listed().Match(definition) is { Success: true } list)
        {
            return list.Groups[1].Value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(r => names.GetValueOrDefault(r) ?? throw new InvalidDataException($"unknown role {r}")).ToList();
        }

        throw new InvalidDataException($"unknown role set definition: {definition}");
    }

    [GeneratedRegex(@"\blet\s+(role_[a-z_]+)\s*=\s*""([^""]+)""")]
    private static partial Regex RoleName();

    [GeneratedRegex(@"\(\s*(role_[a-z_]+)\s*,\s*""(?:[^""\\]|\\.)*""\s*,\s*(true|false)\s*\)", RegexOptions.Singleline)]
    private static partial Regex OrderedEntry();

    [GeneratedRegex(@"\blet\s+(_R_[A-Z_]+)\s*=\s*([^\n]+)")]
    private static partial Regex RoleSet();

    [GeneratedRegex(@"(?:Datamodel_roles\.)?\b(_R_[A-Z_]+)\b")]
    private static partial Regex SetReference();

    [GeneratedRegex(@"^Some\s*\(\s*roles_gte\s+(role_[a-z_]+)\s*\)$")]
    private static partial Regex AtLeast();

    [GeneratedRegex(@"^Some\s*\[([^\]]*)\]$")]
    private static partial Regex Listed();
}
