using Corral.Cli.Output;

namespace Corral.Cli.Tests;

public class PrinterTests
{
    private static IReadOnlyList<KeyValuePair<string, string>> Rec(params (string K, string V)[] fields) =>
        fields.Select(f => new KeyValuePair<string, string>(f.K, f.V)).ToList();

    [Fact]
    public void A_record_pads_the_first_label_right_and_the_others_left_to_four_past_the_longest()
    {
        Assert.Equal(
            "uuid ( RO)           : 0b1e\n" +
            "     name-label ( RW): web\n" +
            "    power-state ( RO): running\n",
            XePrinter.MultiLineRecord(Rec(("uuid ( RO)", "0b1e"), ("name-label ( RW)", "web"), ("power-state ( RO)", "running"))));
    }

    [Fact]
    public void Records_of_a_table_each_end_with_two_empty_lines()
    {
        var o = new StringWriter();
        var p = new XePrinter(o, TextWriter.Null, minimal: false);
        p.Table([Rec(("uuid ( RO)", "a"), ("name-label ( RW)", "x")), Rec(("uuid ( RO)", "b"), ("name-label ( RW)", "y"))]);
        p.Flush();
        Assert.Equal(
            "uuid ( RO)          : a\n    name-label ( RW): x\n\n\n" +
            "uuid ( RO)          : b\n    name-label ( RW): y\n\n\n", o.ToString());
    }

    [Fact]
    public void A_record_without_fields_prints_three_newlines_as_xe_does()
    {
        var o = new StringWriter();
        new XePrinter(o, TextWriter.Null, minimal: false).Table([Rec()]);
        Assert.Equal("\n\n\n", o.ToString());
    }

    [Fact]
    public void Minimal_prints_first_values_comma_separated_with_commas_and_backslashes_escaped()
    {
        var o = new StringWriter();
        var p = new XePrinter(o, TextWriter.Null, minimal: true);
        p.Table([Rec(("name-label ( RW)", "db, primary"), ("uuid ( RO)", "u1")), Rec(("name-label ( RW)", @"a\b"))]);
        Assert.Equal("", o.ToString());
        p.Flush();
        Assert.Equal(@"db\, primary,a\\b" + "\n", o.ToString());
    }

    [Fact]
    public void Minimal_output_of_several_prints_comes_newest_first_and_an_empty_list_is_an_empty_line()
    {
        var o = new StringWriter();
        var p = new XePrinter(o, TextWriter.Null, minimal: true);
        p.Table([Rec(("uuid ( RO)", "first"))]);
        p.Message("Disk 0 VBD:");
        p.List(["second"]);
        p.Flush();
        Assert.Equal("second,first\n", o.ToString());

        var empty = new StringWriter();
        var q = new XePrinter(empty, TextWriter.Null, minimal: true);
        q.Table([]);
        q.Table([Rec()]);
        q.Flush();
        Assert.Equal("\n", empty.ToString());
    }

    [Fact]
    public void Direct_prints_show_even_with_minimal_and_messages_only_without()
    {
        var o = new StringWriter();
        var p = new XePrinter(o, TextWriter.Null, minimal: true);
        p.Print("Type 'yes' to continue");
        p.Message("hidden");
        Assert.Equal("Type 'yes' to continue\n", o.ToString());
    }
}
