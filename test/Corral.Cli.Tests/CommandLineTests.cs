using Corral.Cli;

namespace Corral.Cli.Tests;

public class CommandLineTests
{
    [Fact]
    public void Client_options_are_taken_wherever_they_stand_and_the_rest_is_the_command()
    {
        var a = CliArguments.Parse(["-s", "10.0.0.1", "vm-shutdown", "-u", "admin", "password=pw", "vm=web 1", "--force", "--minimal", "other-config:k=v=w", "-p", "8080"]);
        Assert.Equal("vm-shutdown", a.Command);
        Assert.Equal("10.0.0.1", a.Server);
        Assert.Equal("admin", a.User);
        Assert.Equal("pw", a.Password);
        Assert.Equal(8080, a.Port);
        Assert.Equal("web 1", a.Get("vm"));
        Assert.Equal("v=w", a.Get("other-config:k"));
        Assert.True(a.Force && a.Minimal && !a.Multiple);
        Assert.Equal(["vm", "force", "minimal", "other-config:k"], a.Parameters.Select(p => p.Key));
        Assert.Equal("true", a.Get("force"));
    }

    [Fact]
    public void Later_connection_options_override_earlier_ones_and_h_names_the_server()
    {
        var a = CliArguments.Parse(["-s", "first", "vm-list", "server=second", "--nossl"]);
        Assert.Equal("second", a.Server);
        Assert.True(a.NoSsl);
        Assert.Equal("third", CliArguments.Parse(["-h", "third", "host-list"]).Server);
    }

    [Fact]
    public void A_bare_word_is_a_key_with_an_empty_value_as_in_xe()
    {
        var a = CliArguments.Parse(["vm-list", "power-state"]);
        Assert.Equal("", a.Get("power-state"));
    }

    [Fact]
    public void A_key_given_twice_is_read_at_its_first_occurrence()
    {
        Assert.Equal("a", CliArguments.Parse(["vm-list", "uuid=a", "uuid=b"]).Get("uuid"));
    }

    [Theory]
    [InlineData("name-label=x", "vm-list")]
    [InlineData("vm-list", "-x")]
    [InlineData("vm-list", "-s")]
    public void Malformed_command_lines_are_xe_syntax_errors(string first, string second)
    {
        var ex = Assert.Throws<XeUsageError>(() => CliArguments.Parse([first, second]));
        Assert.Equal("Syntax error: \nFor usage run: 'xe help'", ex.Render());
    }

    [Fact]
    public void Help_version_and_bad_ports_ask_for_the_usage()
    {
        Assert.True(CliArguments.Parse(["vm-list", "--help"]).HelpRequested);
        Assert.True(CliArguments.Parse(["-help"]).HelpRequested);
        Assert.True(CliArguments.Parse(["-version"]).VersionRequested);
        Assert.Equal("Port number must be an integer (0-65535)", CliArguments.Parse(["-p", "http", "vm-list"]).UsageComplaint);
        Assert.Equal("", CliArguments.Parse([]).Command);
    }

    [Fact]
    public void Dot_xe_fills_only_what_the_command_line_left_out_and_passes_other_keys_to_the_command()
    {
        var entries = XeRcFile.Parse(["server=10.1.1.1", "", "port=8480", "username=root", "password=from file ", "nossl=true", "minimal=true", "port=8481"], out var error);
        Assert.Null(error);
        var a = CliArguments.Parse(["-pw", "given", "host-list"]);
        a.ApplyConfig(entries);
        Assert.Equal("10.1.1.1", a.Server);
        Assert.Equal(8481, a.Port);
        Assert.Equal("root", a.User);
        Assert.Equal("given", a.Password);
        Assert.True(a.NoSsl);
        Assert.True(a.Minimal);
    }

    [Fact]
    public void Dot_xe_values_are_kept_as_written()
    {
        var entries = XeRcFile.Parse(["password=with spaces ", "server=a=b"], out _);
        Assert.Equal([new("password", "with spaces "), new("server", "a=b")], entries);
    }

    [Fact]
    public void A_dot_xe_line_without_equals_spoils_the_whole_file_as_in_xe()
    {
        var entries = XeRcFile.Parse(["server=10.1.1.1", "garbage"], out var error);
        Assert.Empty(entries);
        Assert.Equal("Error parsing rc file. No defaults loaded", error);
    }

    [Fact]
    public void Dot_xe_file_on_disk_is_read()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["server=10.1.1.1", "port=8480", "username=root", "password=fromfile", "nossl=true"]);
            var a = CliArguments.Parse(["-pw", "given", "host-list"]);
            a.ApplyConfigFile(file);
            Assert.Equal("10.1.1.1", a.Server);
            Assert.Equal(8480, a.Port);
            Assert.Equal("given", a.Password);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Xe_extra_args_split_on_unescaped_commas_and_yield_to_the_command_line()
    {
        Assert.Equal(["server=h", "params=uuid,name-label"], XeRcFile.SplitExtraArgs(@"server=h,params=uuid\,name-label"));
        var a = CliArguments.Parse(["-s", "mine", "vm-list"], XeRcFile.SplitExtraArgs("server=theirs,port=81,params=uuid"));
        Assert.Equal("mine", a.Server);
        Assert.Equal(81, a.Port);
        Assert.Equal("uuid", a.Get("params"));
    }
}
