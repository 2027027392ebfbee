using System.Text;
using System.Text.RegularExpressions;

namespace Corral.ModelGen;

/// <summary>
/// One OCaml source of xapi's IDL, read just far enough for the shapes this generator looks at: comments are blanked
/// (positions kept), string literals are known, so that words, balanced groups and expressions are found outside them.
/// </summary>
internal sealed partial class OcamlText
{
    private readonly bool[] _inString;

    public OcamlText(string name, string source)
    {
        Name = name;
        var text = new StringBuilder(source);
        _inString = new bool[source.Length];
        var depth = 0;
        for (var i = 0; i < source.Length; i++)
        {
            if (source[i] == '(' && At(source, i + 1, '*'))
            {
                depth++;
                Blank(text, i, 2);
                i++;
            }
            else if (depth > 0 && source[i] == '*' && At(source, i + 1, ')'))
            {
                depth--;
                Blank(text, i, 2);
                i++;
            }
            else if (source[i] == '"')
            {
                var end = StringEnd(source, i);
                if (depth > 0)
                {
                    Blank(text, i, end - i + 1);
                }
                else
                {
                    Array.Fill(_inString, true, i, end - i + 1);
                }

                i = end;
            }
            else if (source[i] == '\'' && CharLiteralLength(source, i) is > 0 and var length)
            {
                if (depth > 0)
                {
                    Blank(text, i, length);
                }
                else
                {
                    Array.Fill(_inString, true, i, length);
                }

                i += length - 1;
            }
            else if (depth > 0)
            {
                Blank(text, i, 1);
            }
        }

        Text = text.ToString();
    }

    public string Name { get; }

    /// <summary>The source with its comments blanked out.</summary>
    public string Text { get; }

    public bool InString(int index) => _inString[index];

    /// <summary>Where <paramref name="word"/> stands as a whole word outside strings.</summary>
    public IEnumerable<int> Words(string word) =>
        Regex.Matches(Text, $@"(?<![A-Za-z0-9_'.]){Regex.Escape(word)}(?![A-Za-z0-9_'])").Where(m => !InString(m.Index)).Select(m => m.Index);

    /// <summary>
    /// The end (exclusive) of the expression starting at <paramref name="start"/>: after its <c>()</c> argument when
    /// <paramref name="untilUnit"/> (a <c>call</c> or <c>create_obj</c>), else at the first <c>;</c>, <c>]</c> or
    /// <c>)</c> that does not belong to it (a list element).
    /// </summary>
    public int ExpressionEnd(int start, bool untilUnit)
    {
        var depth = 0;
        for (var i = start; i < Text.Length; i++)
        {
            if (InString(i))
            {
                continue;
            }

            var c = Text[i];
            if (untilUnit && depth == 0 && c == '(' && At(Text, i + 1, ')'))
            {
                return i + 2;
            }

            switch (c)
            {
                case '(' or '[' or '{':
                    depth++;
                    break;
                case ')' or ']' or '}' when depth == 0:
                    return i;
                case ')' or ']' or '}':
                    depth--;
                    break;
                case ';' when depth == 0 && !untilUnit:
                    return i;
            }
        }

        throw new InvalidDataException($"{Name}: unterminated expression at {start}");
    }

    /// <summary>The argument of <c>~label:</c> within [start, end): a string literal, a bracketed group or a (qualified) name.</summary>
    public string? Labelled(int start, int end, string label)
    {
        foreach (Match m in Regex.Matches(Text[start..end], $@"~{Regex.Escape(label)}\s*:\s*"))
        {
            var at = start + m.Index;
            if (!InString(at))
            {
                return Atom(at + m.Length);
            }
        }

        return null;
    }

    /// <summary>The atom at <paramref name="at"/>: a string literal (quotes kept), a balanced group, or a name.</summary>
    public string Atom(int at)
    {
        var c = Text[at];
        if (c == '"')
        {
            return Text[at..(StringEnd(Text, at) + 1)];
        }

        if (c is '(' or '[' or '{')
        {
            return Text[at..(GroupEnd(at) + 1)];
        }

        var m = NameAt().Match(Text, at);
        return m.Success && m.Index == at ? m.Value : throw new InvalidDataException($"{Name}: no argument at {at}");
    }

    /// <summary>The index of the bracket closing the one at <paramref name="open"/>.</summary>
    public int GroupEnd(int open)
    {
        var depth = 0;
        for (var i = open; i < Text.Length; i++)
        {
            if (InString(i))
            {
                continue;
            }

            depth += Text[i] switch { '(' or '[' or '{' => 1, ')' or ']' or '}' => -1, _ => 0 };
            if (depth == 0)
            {
                return i;
            }
        }

        throw new InvalidDataException($"{Name}: unbalanced group at {open}");
    }

    /// <summary>The name bound by the nearest <c>let name =</c> before <paramref name="index"/>.</summary>
    public string? LetBefore(int index)
    {
        for (var m = LetBinding().Match(Text, 0, index); m.Success; m = m.NextMatch())
        {
            if (!InString(m.Index))
            {
                return m.Groups[1].Value;
            }
        }

        return null;
    }

    /// <summary>Splits the text of a group's inside on a separator at its top level (inside nothing else).</summary>
    public static IReadOnlyList<string> SplitTopLevel(string inside, char separator)
    {
        var parts = new List<string>();
        var depth = 0;
        var from = 0;
        for (var i = 0; i < inside.Length; i++)
        {
            var c = inside[i];
            if (c == '"')
            {
                i = StringEnd(inside, i);
                continue;
            }

            depth += c switch { '(' or '[' or '{' => 1, ')' or ']' or '}' => -1, _ => 0 };
            if (depth == 0 && c == separator)
            {
                parts.Add(inside[from..i].Trim());
                from = i + 1;
            }
        }

        parts.Add(inside[from..].Trim());
        return parts.Where(p => p.Length > 0).ToList();
    }

    /// <summary>The inside of a bracketed group's text (<c>[a; b]</c> gives <c>a; b</c>).</summary>
    public static string Inside(string group) =>
        group.Length >= 2 && group[0] is '(' or '[' or '{' ? group[1..^1].Trim() : throw new InvalidDataException($"not a group: {group}");

    /// <summary>A string literal's value (OCaml's escapes and line continuations undone).</summary>
    public static string Unquote(string literal)
    {
        if (literal.Length < 2 || literal[0] != '"' || literal[^1] != '"')
        {
            throw new InvalidDataException($"not a string literal: {literal}");
        }

        return Continuation().Replace(literal[1..^1], "").Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);
    }

    private static int StringEnd(string text, int open)
    {
        for (var i = open + 1; i < text.Length; i++)
        {
            if (text[i] == '\\')
            {
                i++;
            }
            else if (text[i] == '"')
            {
                return i;
            }
        }

        throw new InvalidDataException("unterminated string literal");
    }

    /// <summary>The length of a character literal at <paramref name="i"/> (<c>'a'</c>, <c>'\n'</c>), or 0 for a type variable or prime.</summary>
    private static int CharLiteralLength(string text, int i) =>
        At(text, i + 2, '\'') ? 3 : At(text, i + 1, '\\') && At(text, i + 3, '\'') ? 4 : 0;

    private static bool At(string text, int i, char c) => i < text.Length && text[i] == c;

    private static void Blank(StringBuilder text, int start, int length)
    {
        for (var i = start; i < start + length; i++)
        {
            if (text[i] != '\n')
            {
                text[i] = ' ';
            }
        }
    }

    [GeneratedRegex(@"[A-Za-z_][A-Za-z0-9_'.]*")]
    private static partial Regex NameAt();

    [GeneratedRegex(@"\blet\s+([a-z_][A-Za-z0-9_']*)\s*=", RegexOptions.RightToLeft)]
    private static partial Regex LetBinding();

    [GeneratedRegex(@"\\\r?\n\s*")]
    private static partial Regex Continuation();
}
