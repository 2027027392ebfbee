using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The implicit messages xapi's datamodel gives every class, answered from the pool database for all 64 classes:
/// get_all, get_all_records, get_record, get_by_uuid, get_by_name_label, a getter per field, a setter per RW field,
/// and add_to_/remove_from_ (maps) and add_/remove_ (sets) for RW fields. A class Corral holds no objects of
/// answers with an empty set. Setters whose change needs more than a write (memory, power state...) are registered
/// by the class's own provider, which replaces the generic one; so are constructors and destructors.
/// </summary>
public sealed class GenericClassMethods(IPoolDatabase database) : IApiMethodProvider
{
    /// <summary>
    /// Classes whose objects are data and nothing else (a secret's value, a user's name): their implicit constructor and
    /// destructor store and remove the record. Every other class's create/destroy does real work and has its own handler,
    /// or answers NOT_IMPLEMENTED.
    /// </summary>
    private static readonly HashSet<string> Lookups = new(StringComparer.Ordinal) { "get_all", "get_all_records", "get_record", "get_by_uuid" };

    private static readonly HashSet<string> DataOnly = new(StringComparer.Ordinal) { "secret", "user" };

    public void Register(ApiRegistry registry)
    {
        foreach (var schema in XenClasses.All)
        {
            // Implicit messages, and the lookups a class declares itself (message's, say) with the same meaning.
            foreach (var message in schema.Messages.Where(m => m.Implicit || Lookups.Contains(m.Name)))
            {
                if (Handler(schema, message.Name) is { } handler)
                {
                    registry.Implement(message.WireName, handler);
                }
            }
        }
    }

    private ApiHandler? Handler(ClassSchema schema, string message)
    {
        var c = schema.Name;
        switch (message)
        {
            case "get_all":
                return async (_, _, ct) => (await database.GetAllAsync(c, ct)).Select(o => (object?)o.Ref).ToList();
            case "get_all_records":
                return async (_, _, ct) => (await database.GetAllAsync(c, ct)).ToDictionary(o => o.Ref, o => (object?)o.ToRecord());
            case "get_record":
                return async (_, a, ct) => (await GetAsync(c, a[0], ct)).ToRecord();
            case "get_by_uuid":
                return async (_, a, ct) =>
                {
                    var uuid = (string)a[0]!;
                    var obj = await database.FindByUuidAsync(c, uuid, ct) ?? throw XenApiException.UuidInvalid(c, uuid);
                    return obj.Ref;
                };
            case "create" when DataOnly.Contains(c):
                return async (_, a, ct) =>
                {
                    var tx = new PoolTransaction();
                    var created = tx.Create(schema, ConstructorRecord.Fields(schema, (Dictionary<string, object?>)a[0]!));
                    await database.CommitAsync(tx, ct);
                    return created.Ref;
                };
            case "destroy" when DataOnly.Contains(c):
                return async (_, a, ct) =>
                {
                    var obj = await GetAsync(c, a[0], ct);
                    var tx = new PoolTransaction();
                    tx.Delete(obj);
                    await database.CommitAsync(tx, ct);
                    return null;
                };
            case "get_by_name_label":
                return async (_, a, ct) => (await database.GetAllAsync(c, ct))
                    .Where(o => o.GetString("name_label") == (string)a[0]!).Select(o => (object?)o.Ref).ToList();
        }

        return FieldHandler(schema, message, "get_", f => Getter(c, f))
            ?? FieldHandler(schema, message, "set_", f => f.Access == FieldAccess.RW ? Setter(c, f) : null)
            ?? FieldHandler(schema, message, "add_to_", f => f.Type is FieldType.MapOf ? MapAdder(c, f) : null)
            ?? FieldHandler(schema, message, "remove_from_", f => f.Type is FieldType.MapOf ? MapRemover(c, f) : null)
            ?? FieldHandler(schema, message, "add_", f => f.Type is FieldType.SetOf ? SetAdder(c, f) : null)
            ?? FieldHandler(schema, message, "remove_", f => f.Type is FieldType.SetOf ? SetRemover(c, f) : null);
    }

    private static ApiHandler? FieldHandler(ClassSchema schema, string message, string prefix, Func<FieldSchema, ApiHandler?> make) =>
        message.StartsWith(prefix, StringComparison.Ordinal) && schema.Find(message[prefix.Length..]) is { } field ? make(field) : null;

    private ApiHandler Getter(string c, FieldSchema f) =>
        async (_, a, ct) => (await GetAsync(c, a[0], ct))[f.Name];

    private ApiHandler Setter(string c, FieldSchema f) => async (_, a, ct) =>
    {
        await UpdateAsync(c, a[0], o => o[f.Name] = a[1], ct);
        return null;
    };

    private ApiHandler MapAdder(string c, FieldSchema f) => async (_, a, ct) =>
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
        }, ct);
        return null;
    };

    // Removing a key that is not there succeeds, as in xapi (XenCenter and Xen Orchestra rely on it).
    private ApiHandler MapRemover(string c, FieldSchema f) => async (_, a, ct) =>
    {
        await UpdateAsync(c, a[0], o =>
        {
            var d = (Dictionary<string, object?>)o[f.Name]!;
            d.Remove((string)a[1]!);
            o[f.Name] = d;
        }, ct);
        return null;
    };

    private ApiHandler SetAdder(string c, FieldSchema f) => async (_, a, ct) =>
    {
        await UpdateAsync(c, a[0], o =>
        {
            var s = (List<object?>)o[f.Name]!;
            if (!s.Contains(a[1]))
            {
                s.Add(a[1]);
            }

            o[f.Name] = s;
        }, ct);
        return null;
    };

    private ApiHandler SetRemover(string c, FieldSchema f) => async (_, a, ct) =>
    {
        await UpdateAsync(c, a[0], o =>
        {
            var s = (List<object?>)o[f.Name]!;
            s.Remove(a[1]);
            o[f.Name] = s;
        }, ct);
        return null;
    };

    private async Task<XenObject> GetAsync(string className, object? reference, CancellationToken cancellationToken)
    {
        var r = (string)reference!;
        if (!OpaqueRef.IsWellFormed(r))
        {
            throw XenApiException.HandleInvalid(className, r);
        }

        return await database.GetAsync(className, r, cancellationToken);
    }

    private async Task UpdateAsync(string className, object? reference, Action<XenObject> change, CancellationToken cancellationToken)
    {
        await GetAsync(className, reference, cancellationToken);
        await database.UpdateAsync([(className, (string)reference!)], (objs, tx) =>
        {
            var o = objs[0].Clone();
            change(o);
            tx.Update(o);
        }, cancellationToken);
    }
}
