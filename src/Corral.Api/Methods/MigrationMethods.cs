using Corral.Api.Dispatch;
using Corral.Api.Migration;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// <c>VM.pool_migrate</c>: live migration between hosts that share the VM's storage (<see cref="MigrationStarter"/>);
/// the call ends when the migration does, with the source half's outcome.
/// </summary>
public sealed class MigrationMethods(IPoolDatabase database, MigrationStarter starter, TaskService tasks) : IApiMethodProvider
{
    public void Register(ApiRegistry registry) =>
        registry.Add("VM.pool_migrate", (ctx, a, ct) => PoolMigrateAsync(ctx, (string)a[0]!, (string)a[1]!, (Dictionary<string, object?>)a[2]!, ct),
            ("vm", FieldType.String), ("host", FieldType.String), ("options", FieldType.Map(FieldType.String, FieldType.String)));

    private async Task<object?> PoolMigrateAsync(CallContext context, string vmRef, string hostRef, Dictionary<string, object?> options, CancellationToken cancellationToken)
    {
        var sendTask = await starter.StartAsync(context.SessionRef, vmRef, hostRef, options, context.TaskRef, cancellationToken).ConfigureAwait(false);
        try
        {
            await tasks.WaitAsync(sendTask, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await DeleteTaskAsync(sendTask).ConfigureAwait(false);
        }

        return null;
    }

    private async Task DeleteTaskAsync(string taskRef)
    {
        if (await database.TryGetAsync(XenClasses.Task, taskRef, CancellationToken.None).ConfigureAwait(false) is { } task)
        {
            var tx = new PoolTransaction();
            tx.Delete(task);
            try
            {
                await database.CommitAsync(tx, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ConcurrentUpdateException)
            {
            }
        }
    }
}
