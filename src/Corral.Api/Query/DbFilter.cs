using System.Globalization;
using Corral.Model;

namespace Corral.Api.Query;

/// <summary>
/// The expressions of xapi's <c>get_all_records_where</c>, as its database filter reads them: <c>true</c>,
/// <c>false</c>, <c>not E</c>, <c>E and E</c>, <c>E or E</c>, <c>(E)</c> and <c>V = V</c>, where a value is a quoted
/// literal (<c>"Running"</c>) or a field (<c>field "power_state"</c>). <c>and</c> and <c>or</c> bind alike, from the
/// left; <c>not</c> takes all that follows it. A field compares as its stored text (an int in decimal, a bool as
/// true/false, a datetime in XenAPI's spelling).
/// </summary>
public sealed class DbFilter
{
    private readonly Func<XenObject, bool> _test;

    private DbFilter(Func<XenObject, bool> test) => _test = test;

    public bool Matches(XenObject obj) => _test(obj);

    /// <exception cref="XenApiException">INVALID_VALUE naming the expression when it does not parse.</exception>
    public static DbFilter Parse(string expression)
    {
        var parser = new Parser(Tokens(expression), expression);
        var test = parser.Expression();
        parser.End();
        return new DbFilter(test);
    }

    private static List<string> Tokens(string text)
    {
        var tokens = new List<string>();
        for (var i = 0; i < text.Length;)
        {
            var c = text[i];
            if (c is ' ' or '\t' or '\n')
            {
                i++;
            }
            else if (c is '=' or '(' or ')')
            {
                tokens.Add(c.ToString());
                i++;
            }
            else if (c == '"')
            {
                var end = text.IndexOf('"', i + 1);
                if (end < 0)
                {
                    throw Invalid(text);
                }

                tokens.Add(text[i..(end + 1)]);
                i = end + 1;
            }
            else
            {
                var word = new string(text[i..].TakeWhile(char.IsAsciiLetter).ToArray());
                if (word is not ("true" or "false" or "field" or "and" or "or" or "not"))
                {
                    throw Invalid(text);
                }

                tokens.Add(word);
                i += word.Length;
            }
        }

        return tokens;
    }

    private static XenApiException Invalid(string expression) => new(ErrorCodes.InvalidValue, "expr", expression);

    /// <summary>The stored text of a field, as xapi's database compares it.</summary>
    private static string Text(XenObject obj, string field) => obj.Schema.Find(field) is null ? "" : obj[field] switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        DateTime d => XenDateTime.Format(d),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        var other => other.ToString() ?? "",
    };

    private sealed class Parser(List<string> tokens, string text)
    {
        private int _at;

        private string? Peek => _at < tokens.Count ? tokens[_at] : null;

        private string Next() => _at < tokens.Count ? tokens[_at++] : throw Invalid(text);

        public void End()
        {
            if (_at != tokens.Count)
            {
                throw Invalid(text);
            }
        }

        /// <summary>Terms joined by and/or, from the left.</summary>
        public Func<XenObject, bool> Expression()
        {
            var left = Term();
            while (Peek is "and" or "or")
            {
                var op = Next();
                var right = Term();
                var l = left;
                left = op == "and" ? o => l(o) && right(o) : o => l(o) || right(o);
            }

            return left;
        }

        private Func<XenObject, bool> Term()
        {
            switch (Peek)
            {
                case "not":
                    Next();
                    var inner = Expression();
                    return o => !inner(o);
                case "true":
                    Next();
                    return _ => true;
                case "false":
                    Next();
                    return _ => false;
                case "(":
                    Next();
                    var grouped = Expression();
                    if (Next() != ")")
                    {
                        throw Invalid(text);
                    }

                    return grouped;
                default:
                    var left = Value();
                    if (Next() != "=")
                    {
                        throw Invalid(text);
                    }

                    var right = Value();
                    return o => left(o) == right(o);
            }
        }

        private Func<XenObject, string> Value()
        {
            var token = Next();
            if (token == "field")
            {
                var name = Literal(Next());
                return o => Text(o, name);
            }

            var literal = Literal(token);
            return _ => literal;
        }

        private string Literal(string token) => token.Length >= 2 && token[0] == '"' ? token[1..^1] : throw Invalid(text);
    }
}
