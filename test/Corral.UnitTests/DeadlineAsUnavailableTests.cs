using Corral.PoolDatabase.Etcd;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Xunit;

namespace Corral.UnitTests;

public sealed class DeadlineAsUnavailableTests
{
    private static readonly Method<string, string> Unary = new(MethodType.Unary, "etcdserverpb.KV", "Range",
        Marshallers.StringMarshaller, Marshallers.StringMarshaller);

    [Fact]
    public async Task A_call_cancelled_by_its_deadline_fails_as_deadline_exceeded()
    {
        var response = Call(Task.FromCanceled<string>(new CancellationToken(canceled: true)), CancellationToken.None);
        var failure = await Assert.ThrowsAsync<RpcException>(() => response.ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
    }

    [Fact]
    public async Task Etcds_own_context_deadline_answer_fails_as_deadline_exceeded()
    {
        var timedOut = new RpcException(new Status(StatusCode.Unknown, "context deadline exceeded"));
        var failure = await Assert.ThrowsAsync<RpcException>(() => Call(Task.FromException<string>(timedOut), CancellationToken.None).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
        Assert.Contains("context deadline exceeded", failure.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_the_caller_cancelled_stays_cancelled()
    {
        using var caller = new CancellationTokenSource();
        await caller.CancelAsync();
        var response = Call(Task.FromCanceled<string>(caller.Token), caller.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => response.ResponseAsync);
    }

    [Fact]
    public async Task Answers_and_other_failures_pass_through()
    {
        Assert.Equal("kvs", await Call(Task.FromResult("kvs"), CancellationToken.None).ResponseAsync);
        var unavailable = new RpcException(new Status(StatusCode.Unavailable, "no leader"));
        Assert.Same(unavailable, await Assert.ThrowsAsync<RpcException>(() => Call(Task.FromException<string>(unavailable), CancellationToken.None).ResponseAsync));
    }

    private static AsyncUnaryCall<string> Call(Task<string> outcome, CancellationToken caller)
    {
        var context = new ClientInterceptorContext<string, string>(Unary, null, new CallOptions(cancellationToken: caller));
        return new DeadlineAsUnavailable().AsyncUnaryCall("key", context, (_, _) =>
            new AsyncUnaryCall<string>(outcome, Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => new Metadata(), () => { }));
    }
}
