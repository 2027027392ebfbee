using System.Globalization;
using System.Text.Json.Nodes;

namespace Corral.Model;

/// <summary>The XenAPI type of a field or parameter (string, int, ref, set of T, map of K to V ...).</summary>
/// <remarks>
/// In memory every value is one of: <see cref="string"/>, <see cref="long"/>, <see cref="double"/>, <see cref="bool"/>,
/// <see cref="DateTime"/> (UTC), <see cref="List{T}"/> of object? (sets) or <see cref="Dictionary{TKey,TValue}"/> of
/// string to object? (maps; XenAPI map keys travel as strings). References and enums are strings.
/// </remarks>
public abstract record FieldType
{
    public static readonly FieldType String = new Scalar("string");
    public static readonly FieldType Int = new Scalar("int");
    public static readonly FieldType Float = new Scalar("float");
    public static readonly FieldType Bool = new Scalar("bool");
    public static readonly FieldType DateTime = new Scalar("datetime");
    public static readonly FieldType StringSet = new SetOf(String);
    public static readonly FieldType StringMap = new MapOf(String, String);

    public static FieldType Ref(string className) => new RefTo(className);
    public static FieldType RefSet(string className) => new SetOf(new RefTo(className));
    public static FieldType Enum(string enumName, params string[] values) => new EnumOf(enumName, values);
    public static FieldType Set(FieldType element) => new SetOf(element);
    public static FieldType Map(FieldType key, FieldType value) => new MapOf(key, value);
    public static FieldType Record(string className) => new RecordOf(className);

    /// <summary>The value a new object gets when the creator gives none.</summary>
    public abstract object? DefaultValue();

    /// <summary>Turns a loosely typed wire or storage value into this type's canonical in-memory form.</summary>
    /// <exception cref="FormatException">The value does not fit this type.</exception>
    public abstract object? Coerce(object? value);

    public abstract JsonNode? ToJson(object? value);

    public abstract object? FromJson(JsonNode? node);

    public sealed record Scalar(string Name) : FieldType
    {
        public override object? DefaultValue() => Name switch
        {
            "string" => "",
            "int" => 0L,
            "float" => 0.0,
            "bool" => false,
            "datetime" => Corral.Model.XenDateTime.Epoch,
            _ => throw new InvalidOperationException(Name),
        };

        public override object? Coerce(object? value) => Name switch
        {
            "string" => value switch
            {
                string s => s,
                null => "",
                bool b => b ? "true" : "false",
                long or int or double => Convert.ToString(value, CultureInfo.InvariantCulture),
                _ => throw new FormatException($"expected a string, got {value.GetType().Name}"),
            },
            "int" => value switch
            {
                long l => l,
                int i => (long)i,
                double d when Math.Abs(d % 1) < double.Epsilon => (long)d,
                string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
                _ => throw new FormatException($"expected an int, got '{value}'"),
            },
            "float" => value switch
            {
                double d => d,
                long l => (double)l,
                int i => (double)i,
                string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
                _ => throw new FormatException($"expected a float, got '{value}'"),
            },
            "bool" => value switch
            {
                bool b => b,
                string s when bool.TryParse(s, out var b) => b,
                string s when s == "1" || s == "0" => s == "1",
                long l => l != 0,
                _ => throw new FormatException($"expected a bool, got '{value}'"),
            },
            "datetime" => value switch
            {
                System.DateTime dt => dt.ToUniversalTime(),
                string s => Corral.Model.XenDateTime.Parse(s),
                _ => throw new FormatException($"expected a datetime, got '{value}'"),
            },
            _ => throw new InvalidOperationException(Name),
        };

        public override JsonNode? ToJson(object? value) => Name switch
        {
            "string" => JsonValue.Create((string?)value ?? ""),
            "int" => JsonValue.Create((long)(value ?? 0L)),
            "float" => JsonValue.Create((double)(value ?? 0.0)),
            "bool" => JsonValue.Create((bool)(value ?? false)),
            "datetime" => JsonValue.Create(Corral.Model.XenDateTime.Format((System.DateTime)(value ?? Corral.Model.XenDateTime.Epoch))),
            _ => throw new InvalidOperationException(Name),
        };

        public override object? FromJson(JsonNode? node)
        {
            if (node is null)
            {
                return DefaultValue();
            }

            return Name switch
            {
                "string" => node.GetValue<string>(),
                "int" => node.GetValue<long>(),
                "float" => node.GetValue<double>(),
                "bool" => node.GetValue<bool>(),
                "datetime" => Corral.Model.XenDateTime.Parse(node.GetValue<string>()),
                _ => throw new InvalidOperationException(Name),
            };
        }

        public override string ToString() => Name;
    }

    public sealed record RefTo(string ClassName) : FieldType
    {
        public override object? DefaultValue() => OpaqueRef.Null;

        /// <summary>An empty reference is always <c>OpaqueRef:NULL</c>, never "": clients test for that spelling.</summary>
        public override object? Coerce(object? value) => value switch
        {
            null or "" => OpaqueRef.Null,
            string s => s,
            _ => throw new FormatException($"expected a {ClassName} ref, got '{value}'"),
        };

        public override JsonNode? ToJson(object? value) => JsonValue.Create((string?)value ?? OpaqueRef.Null);

        public override object? FromJson(JsonNode? node) => Coerce(node?.GetValue<string>());

        public override string ToString() => $"{ClassName} ref";
    }

    public sealed record EnumOf(string EnumName, IReadOnlyList<string> Values) : FieldType
    {
        public override object? DefaultValue() => Values.Count > 0 ? Values[0] : "";

        public override object? Coerce(object? value)
        {
            if (value is not string s)
            {
                throw new FormatException($"expected one of {string.Join(", ", Values)}, got '{value}'");
            }

            // XenAPI clients send enums in any case (xe sends "Running", SDKs send "running").
            foreach (var v in Values)
            {
                if (string.Equals(v, s, StringComparison.OrdinalIgnoreCase))
                {
                    return v;
                }
            }

            throw new FormatException($"expected one of {string.Join(", ", Values)}, got '{s}'");
        }

        public override JsonNode? ToJson(object? value) => JsonValue.Create((string?)value ?? (string?)DefaultValue());

        public override object? FromJson(JsonNode? node) => node?.GetValue<string>() ?? DefaultValue();

        public override string ToString() => $"enum {EnumName}";

        public bool Equals(EnumOf? other) => other is not null && other.EnumName == EnumName;

        public override int GetHashCode() => EnumName.GetHashCode(StringComparison.Ordinal);
    }

    public sealed record SetOf(FieldType Element) : FieldType
    {
        public override object? DefaultValue() => new List<object?>();

        public override object? Coerce(object? value) => value switch
        {
            null => new List<object?>(),
            System.Collections.IEnumerable e and not string and not System.Collections.IDictionary => e.Cast<object?>().Select(Element.Coerce).ToList(),
            _ => throw new FormatException($"expected a set of {Element}, got '{value}'"),
        };

        public override JsonNode? ToJson(object? value)
        {
            var array = new JsonArray();
            foreach (var item in (IEnumerable<object?>?)value ?? [])
            {
                array.Add(Element.ToJson(item));
            }

            return array;
        }

        public override object? FromJson(JsonNode? node) =>
            node is JsonArray a ? a.Select(Element.FromJson).ToList() : new List<object?>();

        public override string ToString() => $"{Element} set";
    }

    public sealed record MapOf(FieldType Key, FieldType Value) : FieldType
    {
        public override object? DefaultValue() => new Dictionary<string, object?>();

        public override object? Coerce(object? value)
        {
            switch (value)
            {
                case null:
                    return new Dictionary<string, object?>();
                case IDictionary<string, object?> d:
                    return d.ToDictionary(kv => CoerceKey(kv.Key), kv => Value.Coerce(kv.Value));
                case System.Collections.IDictionary d:
                    var result = new Dictionary<string, object?>();
                    foreach (System.Collections.DictionaryEntry kv in d)
                    {
                        result[CoerceKey(kv.Key)] = Value.Coerce(kv.Value);
                    }

                    return result;
                default:
                    throw new FormatException($"expected a map ({Key} -> {Value}), got '{value}'");
            }
        }

        private string CoerceKey(object? key) => Convert.ToString(Key.Coerce(key), CultureInfo.InvariantCulture) ?? "";

        public override JsonNode? ToJson(object? value)
        {
            var obj = new JsonObject();
            foreach (var (k, v) in (IDictionary<string, object?>?)value ?? new Dictionary<string, object?>())
            {
                obj[k] = Value.ToJson(v);
            }

            return obj;
        }

        public override object? FromJson(JsonNode? node) =>
            node is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => Value.FromJson(kv.Value)) : new Dictionary<string, object?>();

        public override string ToString() => $"({Key} -> {Value}) map";
    }

    /// <summary>
    /// A whole record of a class, as a constructor (<c>VM.create</c>) takes it: a struct of fields by name. Its fields
    /// are checked against the class by whoever takes it; here it only has to be a struct.
    /// </summary>
    public sealed record RecordOf(string ClassName) : FieldType
    {
        public override object? DefaultValue() => new Dictionary<string, object?>(StringComparer.Ordinal);

        public override object? Coerce(object? value) => value switch
        {
            IDictionary<string, object?> d => new Dictionary<string, object?>(d, StringComparer.Ordinal),
            _ => throw new FormatException($"expected a {ClassName} record, got '{value}'"),
        };

        public override JsonNode? ToJson(object? value) => throw new NotSupportedException("records are not stored as fields");

        public override object? FromJson(JsonNode? node) => throw new NotSupportedException("records are not stored as fields");

        public override string ToString() => $"{ClassName} record";
    }
}
