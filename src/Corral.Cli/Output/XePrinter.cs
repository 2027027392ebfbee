using System.Text;

namespace Corral.Cli.Output;

/// <summary>
/// xe's output (cli_printer.ml and newcli's printing). A table is a list of records; a record prints as one line per
/// field, the first field's label padded on the right and the others' on the left to a column four wider than the
/// longest label, then <c>": "</c> and the value; each record ends with two empty lines. A list prints one line per
/// item. With <c>--minimal</c> nothing prints until the command succeeds: then one line, the first field of every
/// record (or every list item) joined by commas, with commas and backslashes in values escaped. Errors go to stderr.
/// </summary>
public sealed class XePrinter(TextWriter stdout, TextWriter stderr, bool minimal)
{
    private readonly List<string> _minimalBuffer = [];

    public bool Minimal => minimal;

    public TextWriter Out => stdout;

    public TextWriter Error => stderr;

    /// <summary>xe's <c>PTable</c>.</summary>
    public void Table(IReadOnlyList<IReadOnlyList<KeyValuePair<string, string>>> records)
    {
        if (minimal)
        {
            // xe adds nothing when there are no records or one of them has no fields.
            if (records.Count > 0 && records.All(r => r.Count > 0))
            {
                _minimalBuffer.Insert(0, string.Join(",", records.Select(r => EscapeCommas(r[0].Value))));
            }

            return;
        }

        foreach (var record in records)
        {
            stdout.Write(MultiLineRecord(record));
            stdout.Write("\n\n");
        }
    }

    /// <summary>xe's <c>PList</c>: one line per item.</summary>
    public void List(IReadOnlyList<string> items)
    {
        if (minimal)
        {
            _minimalBuffer.Insert(0, string.Join(",", items.Select(EscapeCommas)));
            return;
        }

        foreach (var item in items)
        {
            stdout.Write(item);
            stdout.Write('\n');
        }
    }

    public void Line(string text) => List([text]);

    /// <summary>A line xe's server sends straight to the terminal (<c>Print</c>), shown even with --minimal.</summary>
    public void Print(string text)
    {
        stdout.Write(text);
        stdout.Write('\n');
        stdout.Flush();
    }

    /// <summary>xe's <c>PMsg</c> (not shown with --minimal).</summary>
    public void Message(string text)
    {
        if (!minimal)
        {
            stdout.Write(text);
            stdout.Write('\n');
        }
    }

    /// <summary>xe's <c>PStderr</c>: the text as given.</summary>
    public void Stderr(string text) => stderr.Write(text);

    /// <summary>Ends a successful command: with --minimal, prints what was collected (newest first, as xe does).</summary>
    public void Flush()
    {
        if (minimal)
        {
            stdout.Write(string.Join(",", _minimalBuffer));
            stdout.Write('\n');
            _minimalBuffer.Clear();
        }

        stdout.Flush();
    }

    /// <summary>cli_printer's <c>multi_line_record</c>: the record's lines, each ending with a newline.</summary>
    public static string MultiLineRecord(IReadOnlyList<KeyValuePair<string, string>> record)
    {
        if (record.Count == 0)
        {
            return "\n";
        }

        var width = 4 + record.Max(f => f.Key.Length);
        var text = new StringBuilder();
        for (var i = 0; i < record.Count; i++)
        {
            var (key, value) = record[i];
            text.Append(i == 0 ? key.PadRight(width) : key.PadLeft(width)).Append(": ").Append(value);
            text.Append('\n');
        }

        return text.ToString();
    }

    /// <summary>--minimal's escaping: <c>,</c> becomes <c>\,</c> and <c>\</c> becomes <c>\\</c>.</summary>
    public static string EscapeCommas(string value) =>
        value.Contains(',', StringComparison.Ordinal) || value.Contains('\\', StringComparison.Ordinal)
            ? value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(",", "\\,", StringComparison.Ordinal)
            : value;
}
