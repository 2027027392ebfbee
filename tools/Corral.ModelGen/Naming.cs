using System.Text;

namespace Corral.ModelGen;

/// <summary>C# names for the datamodel's names: <c>name_label</c> is <c>NameLabel</c>, <c>VCPUs_max</c> is <c>VCPUsMax</c>.</summary>
internal static class Naming
{
    public static string Pascal(string name)
    {
        var text = new StringBuilder(name.Length);
        foreach (var part in name.Split(['_', '-', '.', ' '], StringSplitOptions.RemoveEmptyEntries))
        {
            text.Append(char.ToUpperInvariant(part[0])).Append(part.AsSpan(1));
        }

        return text.Length > 0 && char.IsDigit(text[0]) ? "_" + text : text.ToString();
    }

    public static string Literal(string text)
    {
        var s = new StringBuilder("\"");
        foreach (var c in text)
        {
            s.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                _ => c.ToString(),
            });
        }

        return s.Append('"').ToString();
    }
}
