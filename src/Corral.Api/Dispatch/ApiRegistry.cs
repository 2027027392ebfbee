using Corral.Model;

namespace Corral.Api.Dispatch;

/// <summary>
/// The table of XenAPI messages this server answers: every message of xapi's datamodel (each either implemented or
/// answering NOT_IMPLEMENTED, removed ones MESSAGE_REMOVED), and Corral's own. Names match case-sensitively, as
/// xapi's do; xapi's alternative spelling <c>VM_get_record</c> is accepted too.
/// </summary>
public sealed class ApiRegistry
{
    private readonly Dictionary<string, ApiMethod> _methods = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _alternativeNames = new(StringComparer.Ordinal);

    public ApiRegistry()
    {
        foreach (var message in XenApi.AllClasses.SelectMany(c => c.Messages))
        {
            _methods[message.WireName] = ApiMethod.FromSchema(message);
            _alternativeNames[$"{message.ClassName}_{message.Name}"] = message.WireName;
        }
    }

    public IEnumerable<ApiMethod> Methods => _methods.Values;

    /// <summary>Binds the handler of a message of xapi's datamodel; its signature is the datamodel's.</summary>
    /// <exception cref="InvalidOperationException">The datamodel has no such message (a typo fails at start, not at a call).</exception>
    public void Implement(string name, ApiHandler handler)
    {
        var method = _methods.GetValueOrDefault(name);
        if (method?.Schema is null)
        {
            throw new InvalidOperationException($"{name} is not a message of xapi's datamodel; declare Corral's own messages with AddExtension");
        }

        _methods[name] = method with { Handler = handler };
    }

    /// <summary>
    /// Binds the handler of a message xapi has removed (which would answer MESSAGE_REMOVED): Corral serves it again,
    /// as a published message of the datamodel.
    /// </summary>
    public void Revive(string name, ApiHandler handler)
    {
        var method = _methods.GetValueOrDefault(name);
        if (method?.Schema is not { Lifecycle: Lifecycle.Removed } schema)
        {
            throw new InvalidOperationException($"{name} is not a removed message of xapi's datamodel");
        }

        _methods[name] = method with { Schema = schema with { Lifecycle = Lifecycle.Published }, Handler = handler };
    }

    /// <summary>Adds a message of Corral's own (not in xapi's datamodel), with its parameters.</summary>
    public void AddExtension(ApiMethod method)
    {
        if (_methods.GetValueOrDefault(method.Name)?.Schema is not null)
        {
            throw new InvalidOperationException($"{method.Name} is a message of xapi's datamodel; bind it with Implement");
        }

        _methods[method.Name] = method;
    }

    /// <summary>
    /// Binds <paramref name="handler"/> to <c>Class.name</c>. For a datamodel message the parameters given must agree
    /// with the datamodel's in number and kind (they document what the handler reads); the datamodel's are used.
    /// Anything else is Corral's own message with these parameters.
    /// </summary>
    public void Add(string name, ApiHandler handler, params (string Name, FieldType Type)[] parameters)
    {
        if (_methods.GetValueOrDefault(name)?.Schema is not { } schema)
        {
            AddExtension(new ApiMethod(name, parameters.Select(p => new ApiParameter(p.Name, p.Type)).ToList(), handler));
            return;
        }

        if (schema.Parameters.Count != parameters.Length)
        {
            _mismatches.Add($"{name} takes {schema.Parameters.Count} parameters in xapi's datamodel ({string.Join(", ", schema.Parameters.Select(p => p.Name))}), the handler reads {parameters.Length}");
        }

        for (var i = 0; i < Math.Min(parameters.Length, schema.Parameters.Count); i++)
        {
            if (!SameShape(parameters[i].Type, schema.Parameters[i].Type))
            {
                _mismatches.Add($"{name}: parameter {i + 1} ({schema.Parameters[i].Name}) is {schema.Parameters[i].Type} in xapi's datamodel, the handler reads {parameters[i].Type}");
            }
        }

        Implement(name, handler);
    }

    private readonly List<string> _mismatches = [];

    /// <summary>Throws when a handler was registered with parameters that disagree with xapi's datamodel.</summary>
    public void CheckAgainstDatamodel()
    {
        if (_mismatches.Count > 0)
        {
            throw new InvalidOperationException("handlers disagree with xapi's datamodel:\n" + string.Join("\n", _mismatches));
        }
    }

    public ApiMethod? Find(string name) =>
        _methods.GetValueOrDefault(name) ?? (_alternativeNames.TryGetValue(name, out var wire) ? _methods[wire] : null);

    /// <summary>Two types whose values reach a handler as the same CLR shape (a ref and an enum arrive as strings).</summary>
    private static bool SameShape(FieldType a, FieldType b) => (a, b) switch
    {
        (FieldType.SetOf x, FieldType.SetOf y) => SameShape(x.Element, y.Element),
        (FieldType.MapOf, FieldType.MapOf or FieldType.RecordOf) => true,
        (FieldType.RecordOf, FieldType.RecordOf or FieldType.MapOf) => true,
        _ => Stringy(a) && Stringy(b) || a == b,
    };

    private static bool Stringy(FieldType t) => t == FieldType.String || t is FieldType.RefTo or FieldType.EnumOf;
}

/// <summary>Registers one group of messages (a class's, usually).</summary>
public interface IApiMethodProvider
{
    void Register(ApiRegistry registry);
}
