using Corral.Api.Dispatch;

namespace Corral.Api.Methods;

/// <summary>
/// <c>system.listMethods</c>, as xapi answers it: every message name, sessionless. Xen Orchestra derives the classes
/// it watches from the <c>*.get_all_records</c> among them.
/// </summary>
public sealed class SystemMethods : IApiMethodProvider
{
    public const string ListMethods = "system.listMethods";

    public void Register(ApiRegistry registry) =>
        registry.AddExtension(new ApiMethod(ListMethods, [], (_, _, _) =>
            Task.FromResult<object?>(registry.Methods.Select(m => m.Name).Order(StringComparer.Ordinal).Cast<object?>().ToList()), RequiresSession: false));
}
