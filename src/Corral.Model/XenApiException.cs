namespace Corral.Model;

/// <summary>
/// A XenAPI failure: a code from <see cref="ErrorCodes"/> and its parameters, sent to clients as
/// <c>ErrorDescription: [code, param...]</c> (XML-RPC) or as the JSON-RPC error's data.
/// </summary>
public sealed class XenApiException : Exception
{
    public XenApiException(string code, params string[] parameters)
        : base(parameters.Length == 0 ? code : $"{code}: {string.Join(", ", parameters)}")
    {
        Code = code;
        Parameters = parameters;
    }

    public string Code { get; }

    public IReadOnlyList<string> Parameters { get; }

    /// <summary>The description list exactly as it goes on the wire.</summary>
    public IReadOnlyList<string> ErrorDescription => [Code, .. Parameters];

    public static XenApiException HandleInvalid(string className, string reference) =>
        new(ErrorCodes.HandleInvalid, className, reference);

    public static XenApiException UuidInvalid(string className, string uuid) =>
        new(ErrorCodes.UuidInvalid, className, uuid);
}
