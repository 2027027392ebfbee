using Corral.Api.Auth;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

/// <summary>
/// Ends directory users' sessions the directory no longer vouches for, as xapi's <c>revalidate_all_sessions</c> does:
/// every <see cref="ApiOptions.ExternalSessionRevalidateEvery"/> the master asks the directory again about each session
/// last validated more than <see cref="ApiOptions.ExternalSessionLifespan"/> ago (each up to a tenth more, so that the
/// questions are spread). The session ends when the user's account is disabled, locked or expired, is gone, or is no
/// longer one of the pool's subjects or in a group that is; otherwise its validation time moves on, and its subject
/// follows the user's current one. Every session ends once external authentication is off (as
/// <see cref="SessionService.EndDirectorySessionsAsync"/> ends them when it is turned off). A directory that cannot be
/// asked ends nothing: the question comes again at the next pass. Each user is asked about once per pass.
/// </summary>
public sealed class DirectorySessionRevalidation(IPoolDatabase database, MasterState master, ExternalAuth auth, SessionService sessions,
    IOptions<ApiOptions> options, TimeProvider time, ILogger<DirectorySessionRevalidation> logger) : BackgroundService
{
    private static readonly EventId Ended = new(1315, "DirectorySessionEnded");
    private static readonly EventId NotAsked = new(1316, "DirectorySessionNotRevalidated");

    /// <summary>What the directory said of one user: why its sessions end, or the subject that lets it in.</summary>
    private sealed record Verdict(string? Refusal, string? SubjectRef);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ExternalSessionRevalidateEvery, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default))
        {
            if (!master.ThisHostMayServe)
            {
                continue;
            }

            try
            {
                await RevalidateAsync(time.GetUtcNow().UtcDateTime, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Revalidating the directory users' sessions failed; trying again at the next pass");
            }
        }
    }

    /// <summary>One pass, as at <paramref name="nowUtc"/>. Returns how many sessions it ended.</summary>
    public async Task<int> RevalidateAsync(DateTime nowUtc, CancellationToken cancellationToken)
    {
        var external = await sessions.DirectorySessionsAsync(cancellationToken);
        if (external.Count == 0)
        {
            return 0;
        }

        if (await auth.CurrentAsync(cancellationToken) is not { } directory)
        {
            // Left over from a disable whose own ending of these sessions did not finish: the same ending, again.
            return await sessions.EndDirectorySessionsAsync(cancellationToken);
        }

        var subjects = await database.GetAllAsync(XenApi.Subject.ClassName, cancellationToken);
        var verdicts = new Dictionary<string, Verdict?>(StringComparer.OrdinalIgnoreCase);
        var ended = 0;
        foreach (var session in external)
        {
            if (nowUtc - session.Get(XenApi.Session.ValidationTime) < Lifespan(session))
            {
                continue;
            }

            var sid = session.Get(XenApi.Session.AuthUserSid);
            if (!verdicts.TryGetValue(sid, out var verdict))
            {
                verdict = await JudgeAsync(directory, sid, subjects, cancellationToken);
                verdicts[sid] = verdict;
            }

            if (verdict is { Refusal: { } refusal })
            {
                logger.LogInformation(Ended, "Session of {User} ({Identifier}) ended: {Reason}", session.Get(XenApi.Session.AuthUserName),
                    session.Get(XenApi.Session.AuthUserSid), refusal);
                await sessions.LogoutAsync(session.Ref, cancellationToken);
                ended++;
            }
            else if (verdict is { SubjectRef: { } subjectRef })
            {
                await RenewAsync(session, subjectRef, nowUtc, cancellationToken);
            }
        }

        return ended;
    }

    /// <summary>The lifespan of this session's validation: the configured one, and up to a tenth more by its uuid.</summary>
    private TimeSpan Lifespan(XenObject session)
    {
        var lifespan = options.Value.ExternalSessionLifespan;
        var spread = Guid.TryParse(session.Uuid, out var uuid) ? (uint)uuid.GetHashCode() % 1000 / 1000.0 : 0;
        return lifespan + (lifespan / 10 * spread);
    }

    /// <summary>Asks the directory about the user; null when it could not be asked.</summary>
    private async Task<Verdict?> JudgeAsync((IExternalDirectory Directory, DirectorySettings Settings) current, string sid, IReadOnlyList<XenObject> subjects,
        CancellationToken cancellationToken)
    {
        try
        {
            var information = await current.Directory.InformationAsync(current.Settings, sid, cancellationToken);
            if (SubjectSuspension.Of(information) is { } suspended)
            {
                return new Verdict($"{suspended} in the directory", null);
            }

            if (await current.Directory.GroupsAsync(current.Settings, sid, cancellationToken) is not { } groups)
            {
                return new Verdict("not found in the directory", null);
            }

            var subject = SessionService.SubjectsLettingIn(subjects, sid, groups).FirstOrDefault();
            return subject is null ? new Verdict("no longer one of the pool's subjects, nor in a group that is", null) : new Verdict(null, subject.Ref);
        }
        catch (DirectoryUnavailableException ex)
        {
            logger.LogInformation(NotAsked, "Sessions of {Identifier} not revalidated: {Reason}", sid, ex.Message);
            return null;
        }
    }

    private async Task RenewAsync(XenObject session, string subjectRef, DateTime nowUtc, CancellationToken cancellationToken)
    {
        var transaction = new PoolTransaction();
        var renewed = session.Clone();
        renewed.Set(XenApi.Session.ValidationTime, nowUtc);
        renewed.Set(XenApi.Session.Subject, subjectRef);
        transaction.Update(renewed);

        // Lost to a logout or a touch of the session at the same moment: the next pass asks again.
        await database.TryCommitAsync(transaction, cancellationToken);
    }
}
