using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

public sealed class TaskMethods(IPoolDatabase database) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("task.cancel", async (_, a, ct) =>
        {
            // Corral's operations are state machines that finish or roll back on their own; cancelling marks intent.
            await database.UpdateAsync([(XenClasses.Task, (string)a[0]!)], (objs, tx) =>
            {
                var t = objs[0].Clone();
                if (t.Get(XenApi.Task.Status) == TaskStatusType.Pending)
                {
                    t.Set(XenApi.Task.Status, TaskStatusType.Cancelling);
                    tx.Update(t);
                }
            }, ct);
            return null;
        }, ("task", FieldType.String));
        registry.Add("task.destroy", async (_, a, ct) =>
        {
            var task = await database.GetAsync(XenClasses.Task, (string)a[0]!, ct);
            var tx = new PoolTransaction();
            tx.Delete(task);
            await database.CommitAsync(tx, ct);
            return null;
        }, ("self", FieldType.String));
        registry.Add("task.create", async (ctx, a, ct) =>
        {
            var tx = new PoolTransaction();
            var task = tx.Create(XenClasses.TaskSchema);
            task.Set(XenApi.Task.NameLabel, (string)a[0]!);
            task.Set(XenApi.Task.NameDescription, (string)a[1]!);
            task.Set(XenApi.Task.Created, DateTime.UtcNow);
            task.Set(XenApi.Task.Status, TaskStatusType.Pending);
            await database.CommitAsync(tx, ct);
            return task.Ref;
        }, ("label", FieldType.String), ("description", FieldType.String));
    }
}
