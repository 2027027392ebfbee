namespace Corral.ModelGen;

/// <summary>A type as xapi's datamodel spells it: <c>string</c>, <c>VM ref</c>, <c>enum vm_power_state</c>, <c>T set</c>, <c>(K -> V) map</c>.</summary>
public abstract record XapiType
{
    public sealed record Primitive(string Name) : XapiType
    {
        public override string ToString() => Name;
    }

    public sealed record Ref(string ClassName) : XapiType
    {
        public override string ToString() => $"{ClassName} ref";
    }

    public sealed record Record(string ClassName) : XapiType
    {
        public override string ToString() => $"{ClassName} record";
    }

    public sealed record Enum(string EnumName) : XapiType
    {
        public override string ToString() => $"enum {EnumName}";
    }

    public sealed record Set(XapiType Element) : XapiType
    {
        public override string ToString() => $"{Element} set";
    }

    public sealed record Map(XapiType Key, XapiType Value) : XapiType
    {
        public override string ToString() => $"({Key} -> {Value}) map";
    }

    /// <summary>An optional value; rpclib carries it as a list of none or one.</summary>
    public sealed record Option(XapiType Element) : XapiType
    {
        public override string ToString() => $"{Element} option";
    }

    private static readonly HashSet<string> Primitives = ["string", "int", "float", "bool", "datetime", "void"];

    public static XapiType Parse(string text)
    {
        var t = text.Trim();
        if (t == "an event batch")
        {
            // event.from's result: a struct of events, valid_ref_counts and token.
            return new Record("event_batch");
        }

        if (t.EndsWith(" option", StringComparison.Ordinal))
        {
            return new Option(Parse(t[..^7]));
        }

        if (t.EndsWith(" set", StringComparison.Ordinal))
        {
            return new Set(Parse(t[..^4]));
        }

        if (t.EndsWith(" map", StringComparison.Ordinal) && t.StartsWith('('))
        {
            var inner = t[1..(t.Length - 4)].TrimEnd();
            if (!inner.EndsWith(')'))
            {
                throw new FormatException($"unbalanced map type: {text}");
            }

            inner = inner[..^1];
            var arrow = TopLevelArrow(inner);
            return new Map(Parse(inner[..arrow]), Parse(inner[(arrow + 4)..]));
        }

        if (t.EndsWith(" ref", StringComparison.Ordinal))
        {
            return new Ref(t[..^4]);
        }

        if (t.EndsWith(" record", StringComparison.Ordinal))
        {
            return new Record(t[..^7]);
        }

        if (t.StartsWith("enum ", StringComparison.Ordinal))
        {
            return new Enum(t[5..]);
        }

        return Primitives.Contains(t) ? new Primitive(t) : throw new FormatException($"unknown xapi type: {text}");
    }

    private static int TopLevelArrow(string inner)
    {
        var depth = 0;
        for (var i = 0; i + 4 <= inner.Length; i++)
        {
            depth += inner[i] switch { '(' => 1, ')' => -1, _ => 0 };
            if (depth == 0 && string.CompareOrdinal(inner, i, " -> ", 0, 4) == 0)
            {
                return i;
            }
        }

        throw new FormatException($"no '->' in map type ({inner})");
    }
}
