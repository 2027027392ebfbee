using Corral.Api.Audit;
using Corral.Api.Dispatch;
using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// <c>pool.audit_log_append</c>, xapi's pool-internal call (not in the published datamodel) by which a slave adds the
/// audit line of an HTTP action it served to the master's audit log (<see cref="AuditForwarder"/>). pool-admin (and
/// the hosts' own sessions) only, as in xapi; taken by the master alone.
/// </summary>
public sealed class AuditMethods(AuditLog log, AuditForwarder forwarder) : IApiMethodProvider
{
    public void Register(ApiRegistry registry) =>
        registry.AddExtension(new ApiMethod(AuditForwarder.AppendMethod, [new("line", FieldType.String)], (_, a, _) =>
        {
            if (!forwarder.IsMaster)
            {
                throw new XenApiException(ErrorCodes.HostIsSlave, "");
            }

            log.AppendForwarded((string)a[0]!);
            return Task.FromResult<object?>(null);
        }));
}
