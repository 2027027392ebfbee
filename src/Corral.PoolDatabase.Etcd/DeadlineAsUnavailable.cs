using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// Makes a unary etcd call that ran out of time always fail as <see cref="StatusCode.DeadlineExceeded"/>. gRPC's .NET
/// client sometimes ends such a call with a bare <see cref="OperationCanceledException"/> instead (its deadline timer
/// cancels the HTTP request it is reading), which every caller would take for its own cancellation; and etcd answers a
/// request its own context timed out (a member cut off from its leader) with status Unknown, "context deadline
/// exceeded". Callers that retry while the pool database is unavailable took either for a failure of their own: a
/// background loop ended, and with it the agent, after a host was partitioned and healed, or frozen and thawed. A
/// cancellation the caller asked for is left as it is.
/// </summary>
public sealed class DeadlineAsUnavailable : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        var call = continuation(request, context);
        return new AsyncUnaryCall<TResponse>(Translate(call.ResponseAsync, context.Options.CancellationToken), call.ResponseHeadersAsync,
            call.GetStatus, call.GetTrailers, call.Dispose);
    }

    private static async Task<TResponse> Translate<TResponse>(Task<TResponse> response, CancellationToken caller)
    {
        try
        {
            return await response;
        }
        catch (OperationCanceledException ex) when (!caller.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the etcd call ran out of time", ex));
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unknown && ex.Status.Detail.Contains("deadline exceeded", StringComparison.Ordinal))
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"etcd: {ex.Status.Detail}", ex));
        }
    }
}
