namespace Corral.Model;

/// <summary>
/// A typed handle on one field of a XenAPI class, generated from the datamodel (<c>XenApi.VM.PowerState</c>), so that
/// code reads <c>vm.Get(XenApi.VM.PowerState)</c> as a <see cref="VmPowerState"/> instead of a string under a key.
/// </summary>
/// <typeparam name="T">The field's value as C# holds it.</typeparam>
public abstract class Field<T>(string name)
{
    /// <summary>The field's XenAPI name (<c>power_state</c>).</summary>
    public string Name { get; } = name;

    /// <summary>Reads the stored (canonical) value.</summary>
    public abstract T Read(object? value);

    /// <summary>The value to store; the schema's type coerces it to the canonical form.</summary>
    public abstract object? Write(T value);

    public override string ToString() => Name;
}

public sealed class StringField(string name) : Field<string>(name)
{
    public override string Read(object? value) => value as string ?? "";

    public override object? Write(string value) => value;
}

/// <summary>A reference to an object of <see cref="ClassName"/>; <c>OpaqueRef:NULL</c> when empty.</summary>
public sealed class RefField(string name, string className) : Field<string>(name)
{
    public string ClassName { get; } = className;

    public override string Read(object? value) => value as string is { Length: > 0 } s ? s : OpaqueRef.Null;

    public override object? Write(string value) => string.IsNullOrEmpty(value) ? OpaqueRef.Null : value;
}

public sealed class IntField(string name) : Field<long>(name)
{
    public override long Read(object? value) => value is long l ? l : 0;

    public override object? Write(long value) => value;
}

public sealed class FloatField(string name) : Field<double>(name)
{
    public override double Read(object? value) => value is double d ? d : 0;

    public override object? Write(double value) => value;
}

public sealed class BoolField(string name) : Field<bool>(name)
{
    public override bool Read(object? value) => value is true;

    public override object? Write(bool value) => value;
}

public sealed class DateTimeField(string name) : Field<DateTime>(name)
{
    public override DateTime Read(object? value) => value is DateTime d ? d : XenDateTime.Epoch;

    public override object? Write(DateTime value) => value;
}

/// <summary>An enum field; <typeparamref name="TEnum"/>'s members are the datamodel's values in the same order.</summary>
public sealed class EnumField<TEnum>(string name, FieldType.EnumOf type) : Field<TEnum>(name)
    where TEnum : struct, Enum
{
    public override TEnum Read(object? value) => XenEnum.FromWire<TEnum>(type, value as string);

    public override object? Write(TEnum value) => XenEnum.ToWire(type, value);
}

/// <summary>A set of strings, references or other scalars held as their wire text.</summary>
public sealed class SetField(string name) : Field<IReadOnlyList<string>>(name)
{
    public override IReadOnlyList<string> Read(object? value) =>
        value is IEnumerable<object?> items ? items.Select(x => x?.ToString() ?? "").ToList() : [];

    public override object? Write(IReadOnlyList<string> value) => value.Cast<object?>().ToList();
}

public sealed class EnumSetField<TEnum>(string name, FieldType.EnumOf type) : Field<IReadOnlyList<TEnum>>(name)
    where TEnum : struct, Enum
{
    public override IReadOnlyList<TEnum> Read(object? value) =>
        value is IEnumerable<object?> items ? items.Select(x => XenEnum.FromWire<TEnum>(type, x as string)).ToList() : [];

    public override object? Write(IReadOnlyList<TEnum> value) => value.Select(v => (object?)XenEnum.ToWire(type, v)).ToList();
}

/// <summary>A <c>(string -> string) map</c>.</summary>
public sealed class MapField(string name) : Field<IReadOnlyDictionary<string, string>>(name)
{
    public override IReadOnlyDictionary<string, string> Read(object? value) =>
        value is IDictionary<string, object?> map
            ? map.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);

    public override object? Write(IReadOnlyDictionary<string, string> value) =>
        value.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
}

/// <summary>A <c>(string -> enum) map</c>, such as <c>current_operations</c> (task ref to operation).</summary>
public sealed class EnumMapField<TEnum>(string name, FieldType.EnumOf type) : Field<IReadOnlyDictionary<string, TEnum>>(name)
    where TEnum : struct, Enum
{
    public override IReadOnlyDictionary<string, TEnum> Read(object? value) =>
        value is IDictionary<string, object?> map
            ? map.ToDictionary(kv => kv.Key, kv => XenEnum.FromWire<TEnum>(type, kv.Value as string), StringComparer.Ordinal)
            : new Dictionary<string, TEnum>(StringComparer.Ordinal);

    public override object? Write(IReadOnlyDictionary<string, TEnum> value) =>
        value.ToDictionary(kv => kv.Key, kv => (object?)XenEnum.ToWire(type, kv.Value), StringComparer.Ordinal);
}

/// <summary>Any other type (maps of ints, maps keyed by references...), held in its canonical untyped form.</summary>
public sealed class ValueField(string name) : Field<object?>(name)
{
    public override object? Read(object? value) => value;

    public override object? Write(object? value) => value;
}

/// <summary>Converts between generated C# enums and the datamodel's spelling of their values.</summary>
public static class XenEnum
{
    public static TEnum FromWire<TEnum>(FieldType.EnumOf type, string? wire)
        where TEnum : struct, Enum
    {
        for (var i = 0; i < type.Values.Count; i++)
        {
            if (string.Equals(type.Values[i], wire, StringComparison.OrdinalIgnoreCase))
            {
                return (TEnum)Enum.ToObject(typeof(TEnum), i);
            }
        }

        throw new FormatException($"'{wire}' is not a value of {type.EnumName}");
    }

    public static string ToWire<TEnum>(FieldType.EnumOf type, TEnum value)
        where TEnum : struct, Enum => type.Values[Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture)];
}
