using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Corral.PoolDatabase.Etcd;

/// <summary>
/// Makes a unary etcd call that ran out of time always fail as <see cref="StatusCode.DeadlineExceeded"/>. gRPC's .NET
/// client sometimes ends such a call with a bare <see cref="OperationCanceledException"/> instead (its deadline timer
/// cancels the HTTP request it is reading), which every caller would take for its own cancellation: a background loop
/// that retries while the pool database is unavailable then ended, and with it the agent, after a host was frozen and
/// thawed. A cancellation the caller asked for is left as it is.
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
    }
}
