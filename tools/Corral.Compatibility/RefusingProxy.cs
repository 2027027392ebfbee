using System.Reflection;

namespace Corral.Compatibility;

/// <summary>
/// Stands in for a service the message providers receive but must not use while they register: every call throws.
/// The report reads which handlers are bound; if building the registry ever reads the pool database, this says so
/// instead of the report quietly depending on a database.
/// </summary>
public class RefusingProxy : DispatchProxy
{
    private string _what = "";

    public static T Create<T>(string what)
        where T : class
    {
        var proxy = Create<T, RefusingProxy>();
        ((RefusingProxy)(object)proxy)._what = what;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
        throw new InvalidOperationException(
            $"{_what}.{targetMethod?.Name} was called while the message providers registered; registration must only store its dependencies");
}
