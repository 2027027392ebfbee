using Corral.Model;

namespace Corral.Api.Dispatch;

/// <summary>The table of XenAPI messages this server answers. Method names match case-sensitively, as xapi's do.</summary>
public sealed class ApiRegistry
{
    private readonly Dictionary<string, ApiMethod> _methods = new(StringComparer.Ordinal);

    public IEnumerable<ApiMethod> Methods => _methods.Values;

    public void Add(ApiMethod method) => _methods[method.Name] = method;

    /// <summary>Registers <c>Class.name</c> with typed parameters.</summary>
    public void Add(string name, ApiHandler handler, params (string Name, FieldType Type)[] parameters) =>
        Add(new ApiMethod(name, parameters.Select(p => new ApiParameter(p.Name, p.Type)).ToList(), handler));

    public ApiMethod? Find(string name) => _methods.GetValueOrDefault(name);
}

/// <summary>Registers one group of messages (a class's, usually).</summary>
public interface IApiMethodProvider
{
    void Register(ApiRegistry registry);
}
