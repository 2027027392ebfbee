using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Messages;

/// <summary>
/// Pool messages (alerts): what xapi keeps in files beside its database, Corral keeps as <c>message</c> objects in the
/// pool database, so that every host sees them and event.from sends their <c>add</c> and <c>del</c>.
/// </summary>
public static class PoolMessages
{
    /// <summary>The class an alert about an object of <paramref name="cls"/> refers to.</summary>
    public static string ClassOf(Cls cls) => cls switch
    {
        Cls.VM => XenClasses.VM,
        Cls.Host => XenClasses.Host,
        Cls.SR => XenClasses.SR,
        Cls.Pool => XenClasses.Pool,
        Cls.VMPP => XenApi.VMPP.ClassName,
        Cls.VMSS => XenApi.VMSS.ClassName,
        Cls.PVSProxy => XenApi.PVSProxy.ClassName,
        Cls.VDI => XenClasses.VDI,
        Cls.Certificate => XenApi.Certificate.ClassName,
        _ => throw new ArgumentOutOfRangeException(nameof(cls), cls, null),
    };

    /// <summary>Adds a new message about the object of class <paramref name="cls"/> whose uuid is <paramref name="objectUuid"/> to a transaction.</summary>
    public static XenObject Create(PoolTransaction transaction, string name, long priority, Cls cls, string objectUuid, string body, DateTime timestamp)
    {
        var message = transaction.Create(XenApi.Message.Schema);
        message.Set(XenApi.Message.Name, name);
        message.Set(XenApi.Message.Priority, priority);
        message.Set(XenApi.Message.Cls, cls);
        message.Set(XenApi.Message.ObjUuid, objectUuid);
        message.Set(XenApi.Message.Timestamp, timestamp);
        message.Set(XenApi.Message.Body, body);
        return message;
    }
}
