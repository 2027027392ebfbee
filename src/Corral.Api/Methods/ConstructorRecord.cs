using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// The record a constructor (<c>VM.create</c>, <c>VIF.create</c>...) takes, read as xapi reads it: the fields the
/// datamodel lets a creator give (RW and RO/constructor), each converted to its type; runtime fields (power_state,
/// resident_on, reverse links...) and keys the class does not have are ignored, as xapi ignores them. A field the
/// datamodel requires but the caller left out takes Corral's default (xapi would refuse the call): clients send
/// whole records, older scripts partial ones.
/// </summary>
public static class ConstructorRecord
{
    /// <exception cref="XenApiException">FIELD_TYPE_ERROR naming a field whose value does not fit its type.</exception>
    public static Dictionary<string, object?> Fields(ClassSchema schema, IReadOnlyDictionary<string, object?> record)
    {
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in schema.Fields.Where(f => f.InConstructor))
        {
            if (!record.TryGetValue(field.Name, out var value))
            {
                continue;
            }

            try
            {
                fields[field.Name] = field.Type.Coerce(value);
            }
            catch (Exception ex) when (ex is FormatException or InvalidCastException)
            {
                throw new XenApiException(ErrorCodes.FieldTypeError, field.Name);
            }
        }

        return fields;
    }

    /// <summary>
    /// The caller's value of <paramref name="field"/> in a constructor's record, converted to the field's type as the
    /// object stores it, or <paramref name="fallback"/> when the record leaves the field out.
    /// </summary>
    /// <exception cref="FormatException">The value does not fit the field's type.</exception>
    public static T Value<T>(IReadOnlyDictionary<string, object?> record, ClassSchema schema, Field<T> field, T fallback) =>
        record.GetValueOrDefault(field.Name) is { } value ? field.Read(schema.Get(field.Name).Type.Coerce(value)) : fallback;
}
