namespace Corral.Api.Client;

/// <summary>
/// One XenAPI call on the wire: a method name and its positional parameters (the session first, when the method takes
/// one), answered by the decoded result. Values are plain .NET values: <see cref="string"/>, <see cref="long"/>,
/// <see cref="double"/>, <see cref="bool"/>, <c>null</c>, <see cref="List{T}"/> of values and
/// <see cref="Dictionary{TKey,TValue}"/> (string keys, insertion order kept) of values. A XenAPI failure is thrown as
/// <see cref="Corral.Model.XenApiException"/>; a transport failure as <see cref="XenApiTransportException"/>.
/// </summary>
public interface IXenApiClient
{
    Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken);

    /// <summary>
    /// A GET of one of the server's HTTP handlers (<c>/audit_log?session_id=...</c>), its body copied to
    /// <paramref name="destination"/>, over the same connection settings as the calls. Clients without HTTP refuse.
    /// </summary>
    Task GetAsync(string pathAndQuery, Stream destination, CancellationToken cancellationToken) =>
        throw new XenApiTransportException($"this client cannot fetch {pathAndQuery.Split('?')[0]}");

    /// <summary>
    /// A PUT of <paramref name="source"/> to one of the server's HTTP handlers (<c>/import?session_id=...</c>), streamed,
    /// over the same connection settings as the calls. Clients without HTTP refuse.
    /// </summary>
    Task PutAsync(string pathAndQuery, Stream source, CancellationToken cancellationToken) =>
        throw new XenApiTransportException($"this client cannot send to {pathAndQuery.Split('?')[0]}");
}

/// <summary>The server could not be reached or did not answer as a XenAPI server. The message is xe's wording.</summary>
public sealed class XenApiTransportException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>No connection was made (refused, timed out, no route): the request never reached the server.</summary>
    public bool CouldNotConnect { get; init; }

    /// <summary>The server answered, but with a certificate that is not the one trusted for it (pinning refused it).</summary>
    public bool CertificateRejected { get; init; }

    /// <summary>The server that failed, as addressed (host name or address), when known.</summary>
    public string? Server { get; init; }
}
