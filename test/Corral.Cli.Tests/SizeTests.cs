using Corral.Cli.Records;

namespace Corral.Cli.Tests;

public class SizeTests
{
    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("10GiB", 10L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("512mib", 512L << 20)]
    [InlineData("4G", 4L << 30)]
    [InlineData("1 GiB", 1L << 30)]
    [InlineData("2kb", 2048L)]
    [InlineData("3T", 3L << 40)]
    [InlineData("5bytes", 5L)]
    [InlineData("7b", 7L)]
    public void Sizes_take_xe_units(string text, long bytes) => Assert.Equal(bytes, XeValues.ParseBytes("virtual-size", text));

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("10XB")]
    [InlineData("")]
    [InlineData("99999999999T")]
    public void Other_sizes_are_refused_in_xe_words(string text)
    {
        var ex = Assert.Throws<XeFailure>(() => XeValues.ParseBytes("virtual-size", text));
        Assert.Equal($"Error: Failed to parse field 'virtual-size': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{text}'", ex.Render());
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("1", true)]
    [InlineData("f", false)]
    [InlineData("no", false)]
    public void Boolean_parameters_read_as_xe_reads_them(string text, bool value) => Assert.Equal(value, XeValues.ParseBool("shared", text));

    [Fact]
    public void A_bad_boolean_parameter_is_refused_in_xe_words() =>
        Assert.Equal("Error: Failed to parse parameter 'shared': Expected 'true','t','yes','y','1','false','f','no','n','0' got maybe",
            Assert.Throws<XeFailure>(() => XeValues.ParseBool("shared", "maybe")).Render());
}
