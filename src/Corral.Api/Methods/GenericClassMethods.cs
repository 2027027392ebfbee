using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The messages every XenAPI class has, made from its schema: get_all, get_all_records, get_record, get_by_uuid,
/// get_by_name_label, a getter per field, a setter per RW field, and add_to_/remove_from_ for RW maps and sets.
/// Setters whose change needs more than a write (memory, power state...) are registered by the class's own provider,
/// which replaces the generic one.
/// </summary>
public sealed class GenericClassMethods(IPoolDatabase database) : IApiMethodProvider
{
    private static readonly FieldType RefParam = FieldType.String;

    public void Register(ApiRegistry registry)
    {
        foreach (var schema in XenClasses.All)
        {
            RegisterClass(registry, schema);
        }
    }

    private void RegisterClass(ApiRegistry registry, ClassSchema schema)
    {
        var c = schema.Name;
        registry.Add($"{c}.get_all", async (_, _, ct) =>
            (await database.GetAllAsync(c, ct).ConfigureAwait(false)).Select(o => (object?)o.Ref).ToList());
        registry.Add($"{c}.get_all_records", async (_, _, ct) =>
        {
            var all = await database.GetAllAsync(c, ct).ConfigureAwait(false);
            return all.ToDictionary(o => o.Ref, o => (object?)o.ToRecord());
        });
        registry.Add($"{c}.get_record", async (_, a, ct) => (await GetAsync(c, a[0], ct).ConfigureAwait(false)).ToRecord(), ("self", RefParam));
        registry.Add($"{c}.get_by_uuid", async (_, a, ct) =>
        {
            var uuid = (string)a[0]!;
            var obj = await database.FindByUuidAsync(c, uuid, ct).ConfigureAwait(false) ?? throw XenApiException.UuidInvalid(c, uuid);
            return obj.Ref;
        }, ("uuid", FieldType.String));
        if (schema.HasNameLabel)
        {
            registry.Add($"{c}.get_by_name_label", async (_, a, ct) =>
                (await database.GetAllAsync(c, ct).ConfigureAwait(false))
                    .Where(o => o.GetString("name_label") == (string)a[0]!).Select(o => (object?)o.Ref).ToList(),
                ("label", FieldType.String));
        }

        foreach (var field in schema.Fields)
        {
            var f = field;
            registry.Add($"{c}.get_{f.Name}", async (_, a, ct) => (await GetAsync(c, a[0], ct).ConfigureAwait(false))[f.Name], ("self", RefParam));
            if (f.Access != FieldAccess.RW)
            {
                continue;
            }

            registry.Add($"{c}.set_{f.Name}", async (_, a, ct) =>
            {
                await UpdateAsync(c, a[0], o => o[f.Name] = a[1], ct).ConfigureAwait(false);
                return null;
            }, ("self", RefParam), ("value", f.Type));

            if (f.Type is FieldType.MapOf map)
            {
                registry.Add($"{c}.add_to_{f.Name}", async (_, a, ct) =>
                {
                    await UpdateAsync(c, a[0], o =>
                    {
                        var d = (Dictionary<string, object?>)o[f.Name]!;
                        var key = (string)a[1]!;
                        if (d.ContainsKey(key))
                        {
                            throw new XenApiException(ErrorCodes.MapDuplicateKey, c, f.Name, (string)a[0]!, key);
                        }

                        d[key] = a[2];
                        o[f.Name] = d;
                    }, ct).ConfigureAwait(false);
                    return null;
                }, ("self", RefParam), ("key", map.Key), ("value", map.Value));
                registry.Add($"{c}.remove_from_{f.Name}", async (_, a, ct) =>
                {
                    await UpdateAsync(c, a[0], o =>
                    {
                        var d = (Dictionary<string, object?>)o[f.Name]!;
                        d.Remove((string)a[1]!);
                        o[f.Name] = d;
                    }, ct).ConfigureAwait(false);
                    return null;
                }, ("self", RefParam), ("key", map.Key));
            }
            else if (f.Type is FieldType.SetOf set)
            {
                // xapi names set adders after the singular: add_tags / remove_tags.
                registry.Add($"{c}.add_{f.Name}", async (_, a, ct) =>
                {
                    await UpdateAsync(c, a[0], o =>
                    {
                        var s = (List<object?>)o[f.Name]!;
                        if (!s.Contains(a[1]))
                        {
                            s.Add(a[1]);
                        }

                        o[f.Name] = s;
                    }, ct).ConfigureAwait(false);
                    return null;
                }, ("self", RefParam), ("value", set.Element));
                registry.Add($"{c}.remove_{f.Name}", async (_, a, ct) =>
                {
                    await UpdateAsync(c, a[0], o =>
                    {
                        var s = (List<object?>)o[f.Name]!;
                        s.Remove(a[1]);
                        o[f.Name] = s;
                    }, ct).ConfigureAwait(false);
                    return null;
                }, ("self", RefParam), ("value", set.Element));
            }
        }
    }

    private async Task<XenObject> GetAsync(string className, object? reference, CancellationToken cancellationToken)
    {
        var r = (string)reference!;
        if (!OpaqueRef.IsWellFormed(r))
        {
            throw XenApiException.HandleInvalid(className, r);
        }

        return await database.GetAsync(className, r, cancellationToken).ConfigureAwait(false);
    }

    private async Task UpdateAsync(string className, object? reference, Action<XenObject> change, CancellationToken cancellationToken)
    {
        await GetAsync(className, reference, cancellationToken).ConfigureAwait(false);
        await database.UpdateAsync([(className, (string)reference!)], (objs, tx) =>
        {
            var o = objs[0].Clone();
            change(o);
            tx.Update(o);
        }, cancellationToken).ConfigureAwait(false);
    }
}
