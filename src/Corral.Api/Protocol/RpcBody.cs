namespace Corral.Api.Protocol;

/// <summary>A request body larger than this host reads for one call (<see cref="Sessions.ApiOptions.MaxRpcRequestBytes"/>).</summary>
public sealed class RpcBodyTooLargeException(long limit) : Exception($"request body larger than {limit} bytes")
{
    public long Limit { get; } = limit;
}

/// <summary>
/// Reads an XML-RPC or JSON-RPC request body into memory, up to a limit: no call is parsed, whoever sent it, from more
/// than that (xapi reads at most 300 KiB of a call's body, <c>http_limit_max_rpc_size</c>).
/// </summary>
public static class RpcBody
{
    public static async Task<MemoryStream> ReadAsync(Stream body, long? contentLength, long limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (contentLength > limit)
        {
            throw new RpcBodyTooLargeException(limit);
        }

        var memory = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (memory.Length + read > limit)
            {
                await memory.DisposeAsync();
                throw new RpcBodyTooLargeException(limit);
            }

            memory.Write(buffer, 0, read);
        }

        memory.Position = 0;
        return memory;
    }
}
