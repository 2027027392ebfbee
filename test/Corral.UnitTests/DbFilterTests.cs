using Corral.Api.Query;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests;

public class DbFilterTests
{
    private static XenObject Message(string name, long priority, string cls) =>
        new PoolTransaction().Create(XenApi.Message.Schema, new Dictionary<string, object?> { ["name"] = name, ["priority"] = priority, ["cls"] = cls });

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    [InlineData("field \"name\" = \"HA_HOST_FAILED\"", true)]
    [InlineData("\"HA_HOST_FAILED\" = field \"name\"", true)]
    [InlineData("field \"priority\" = \"2\"", true)]
    [InlineData("field \"priority\" = \"3\"", false)]
    [InlineData("field \"cls\" = \"Host\" and field \"priority\" = \"2\"", true)]
    [InlineData("field \"cls\" = \"VM\" or field \"priority\" = \"2\"", true)]
    [InlineData("not field \"cls\" = \"VM\"", true)]
    [InlineData("not field \"cls\" = \"Host\" or true", false)]
    [InlineData("(not field \"cls\" = \"Host\") or true", true)]
    [InlineData("field \"no_such_field\" = \"\"", true)]
    public void Expressions_read_as_xapis_database_filter(string expression, bool expected) =>
        Assert.Equal(expected, DbFilter.Parse(expression).Matches(Message("HA_HOST_FAILED", 2, "Host")));

    [Theory]
    [InlineData("")]
    [InlineData("field name = \"x\"")]
    [InlineData("field \"name\" = ")]
    [InlineData("(true")]
    [InlineData("true true")]
    [InlineData("field \"name\" == \"x\"")]
    [InlineData("\"unterminated")]
    public void A_malformed_expression_is_invalid_value(string expression) =>
        Assert.Equal(ErrorCodes.InvalidValue, Assert.Throws<XenApiException>(() => DbFilter.Parse(expression)).Code);
}
