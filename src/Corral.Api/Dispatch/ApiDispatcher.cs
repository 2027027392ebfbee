using System.Globalization;
using Corral.Api.Audit;
using Corral.Api.Sessions;
using Corral.Api.Tasks;
using Corral.Model;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Dispatch;

/// <summary>
/// Runs one XenAPI call whatever the wire format: finds the message, checks the argument count and the session,
/// converts the arguments to their declared types, and runs it, directly or under a task for <c>Async.*</c>.
/// Every failure leaves as a <see cref="XenApiException"/>; nothing else escapes.
/// </summary>
public sealed class ApiDispatcher
{
    private const string AsyncPrefix = "Async.";
    private readonly ApiRegistry _registry;
    private readonly SessionService _sessions;
    private readonly TaskService _tasks;
    private readonly ILogger<ApiDispatcher> _logger;
    private readonly Corral.PoolDatabase.IPoolDatabase _database;
    private readonly AuditLog _audit;

    public ApiDispatcher(IEnumerable<IApiMethodProvider> providers, SessionService sessions, TaskService tasks, Corral.PoolDatabase.IPoolDatabase database,
        AuditLog audit, ILogger<ApiDispatcher> logger)
    {
        _database = database;
        _audit = audit;
        _registry = new ApiRegistry();
        foreach (var provider in providers)
        {
            provider.Register(_registry);
        }

        _registry.CheckAgainstDatamodel();

        _sessions = sessions;
        _tasks = tasks;
        _logger = logger;
    }

    public ApiRegistry Registry => _registry;

    public async Task<object?> InvokeAsync(string methodName, IReadOnlyList<object?> arguments, string remoteAddress, CancellationToken cancellationToken)
    {
        try
        {
            return await InvokeCoreAsync(methodName, arguments, remoteAddress, cancellationToken);
        }
        catch (XenApiException)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (_database.IsUnavailable(ex))
        {
            // No quorum or no connection: what a XenServer slave says when it has lost its master.
            _logger.LogWarning("{Method}: the pool database is unavailable ({Reason})", methodName, ex.Message);
            throw new XenApiException(ErrorCodes.HostInEmergencyMode);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "{Method} failed", methodName);
            throw new XenApiException(ErrorCodes.InternalError, ex.Message);
        }
    }

    private async Task<object?> InvokeCoreAsync(string methodName, IReadOnlyList<object?> arguments, string remoteAddress, CancellationToken cancellationToken)
    {
        var isAsync = methodName.StartsWith(AsyncPrefix, StringComparison.Ordinal);
        var name = isAsync ? methodName[AsyncPrefix.Length..] : methodName;
        var method = _registry.Find(name) ?? throw new XenApiException(ErrorCodes.MessageMethodUnknown, methodName);
        if (isAsync && !method.RequiresSession)
        {
            throw new XenApiException(ErrorCodes.MessageMethodUnknown, methodName);
        }

        var offset = method.RequiresSession ? 1 : 0;
        CheckArgumentCount(method, methodName, arguments.Count - offset);
        var sessionRef = "";
        SessionAccess? access = null;
        if (method.RequiresSession)
        {
            sessionRef = arguments[0] as string ?? throw new XenApiException(ErrorCodes.SessionInvalid, arguments[0]?.ToString() ?? "");
            access = await _sessions.ValidateAsync(sessionRef, cancellationToken);
        }

        if (method.Schema?.Lifecycle == Lifecycle.Removed)
        {
            throw new XenApiException(ErrorCodes.MessageRemoved);
        }

        var raw = arguments.Skip(offset).ToList();
        var audit = AuditLine.Audits(method.Name) && (method.RequiresSession || IsLogin(method.Name))
            ? new AuditedCall(sessionRef, access, method, raw, await _audit.DescribeAsync(method, raw, cancellationToken))
            : null;
        if (access is { Unrestricted: false })
        {
            try
            {
                Authorize(access, method, raw, remoteAddress);
            }
            catch (XenApiException ex) when (audit is not null)
            {
                await RecordAsync(audit, allowed: false, ex, null, cancellationToken);
                throw;
            }
        }

        // After the permission check, as xapi's RBAC comes before any implementation: a caller learns nothing of a
        // message its role lacks, not even that Corral does not implement it.
        var handler = method.Handler ?? throw new XenApiException(ErrorCodes.NotImplemented, method.Name);
        var typed = Arguments(method, arguments, offset);
        var context = new CallContext(sessionRef, remoteAddress, methodName);
        if (!isAsync)
        {
            return await RunAsync(audit, ct => handler(context, typed, ct), cancellationToken);
        }

        var taskRef = await _tasks.CreateAsync(methodName, "", cancellationToken);
        _ = Task.Run(() => _tasks.RunAsync(taskRef, ct => RunAsync(audit, c => handler(context with { TaskRef = taskRef }, typed, c), ct)), CancellationToken.None);
        return taskRef;
    }

    private static bool IsLogin(string method) => method is "session.login_with_password" or "session.slave_local_login_with_password";

    /// <summary>A call the audit log records: who made it, and its arguments as they were before it ran.</summary>
    private sealed record AuditedCall(string SessionRef, SessionAccess? Access, ApiMethod Method, IReadOnlyList<object?> Raw, IReadOnlyList<AuditArgument> Arguments);

    /// <summary>Runs the call, and records its outcome when it is audited (a login's under the session it made).</summary>
    private async Task<object?> RunAsync(AuditedCall? audit, Func<CancellationToken, Task<object?>> run, CancellationToken cancellationToken)
    {
        if (audit is null)
        {
            return await run(cancellationToken);
        }

        object? result;
        try
        {
            result = await run(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await RecordAsync(audit, allowed: true, ex, null, cancellationToken);
            throw;
        }

        await RecordAsync(audit, allowed: true, null, result, cancellationToken);
        return result;
    }

    private async Task RecordAsync(AuditedCall audit, bool allowed, Exception? error, object? result, CancellationToken cancellationToken)
    {
        try
        {
            var (session, who) = (audit.SessionRef, audit.Access);
            if (IsLogin(audit.Method.Name) && result is string made)
            {
                (session, who) = (made, await _sessions.ValidateAsync(made, cancellationToken));
            }

            var outcome = error switch
            {
                null => "OK",
                XenApiException { ErrorDescription.Count: > 0 } xen => "ERROR:" + xen.ErrorDescription[0],
                _ => "ERROR:" + ErrorCodes.InternalError,
            };
            var user = audit.Raw.Count > 0 && IsLogin(audit.Method.Name) ? audit.Raw[0] as string ?? "" : "";
            await _audit.RecordAsync(session, who, user, allowed, outcome, audit.Method.Name, audit.Arguments, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The call's own outcome stands; the audit says in the agent's log that it could not record it.
            _logger.LogWarning(ex, "Could not record {Method} in the audit log", audit.Method.Name);
        }
    }

    /// <summary>
    /// xapi's RBAC check, before any work and before the arguments are read: the call's permission (the message's, or a
    /// guarded map key's) must be among the session's, else RBAC_PERMISSION_DENIED naming it and the roles that hold it,
    /// as xapi words it.
    /// </summary>
    private void Authorize(SessionAccess access, ApiMethod method, IReadOnlyList<object?> raw, string remoteAddress)
    {
        var keyAt = -1;
        for (var i = 0; i < method.Parameters.Count && i < raw.Count; i++)
        {
            if (method.Parameters[i].Name == "key")
            {
                keyAt = i;
            }
        }

        var permission = RoleTable.PermissionFor(method.Name, keyAt >= 0 ? raw[keyAt] as string : null);
        if (access.Allows(permission))
        {
            return;
        }

        _logger.LogInformation(PermissionDenied, "{Method} from {Source} denied: the session lacks {Permission}", method.Name, remoteAddress, permission);
        throw new XenApiException(ErrorCodes.RbacPermissionDenied, permission,
            $"No permission in user session. (Roles with this permission: {string.Join(", ", RoleTable.RolesHolding(permission))})");
    }

    private static readonly EventId PermissionDenied = new(1312, "RbacPermissionDenied");

    /// <summary>
    /// As xapi's dispatcher: a message with defaulted parameters takes any count from its required ones up (the rest
    /// take their defaults, extras are ignored); any other message exactly its parameters. The error counts leave the
    /// session out, as xapi's do.
    /// </summary>
    private static void CheckArgumentCount(ApiMethod method, string methodName, int received)
    {
        var fits = method.AcceptsShorterLists ? received >= method.RequiredCount : received == method.Parameters.Count;
        if (!fits)
        {
            throw new XenApiException(ErrorCodes.MessageParameterCountMismatch, methodName,
                method.RequiredCount.ToString(CultureInfo.InvariantCulture), Math.Max(received, 0).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Each argument converted to its declared type; one left off takes the parameter's default.</summary>
    private static object?[] Arguments(ApiMethod method, IReadOnlyList<object?> arguments, int offset)
    {
        var typed = new object?[method.Parameters.Count];
        for (var i = 0; i < typed.Length; i++)
        {
            var parameter = method.Parameters[i];
            try
            {
                typed[i] = i + offset < arguments.Count ? parameter.Type.Coerce(arguments[i + offset])
                    : parameter.HasDefault ? parameter.Type.Coerce(parameter.Default) : parameter.Type.DefaultValue();
            }
            catch (Exception ex) when (ex is FormatException or InvalidCastException)
            {
                throw new XenApiException(ErrorCodes.FieldTypeError, parameter.Name);
            }
        }

        return typed;
    }
}
