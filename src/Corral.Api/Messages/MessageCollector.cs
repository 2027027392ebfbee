using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Messages;

/// <summary>How many pool messages are kept, and how often the master removes the oldest beyond that.</summary>
public sealed class MessageOptions
{
    /// <summary>The most messages the pool keeps: xapi's <c>message_limit</c> (10,000).</summary>
    public int Limit { get; set; } = 10_000;

    /// <summary>How often the master collects old messages: xapi's database collector runs every 30 seconds.</summary>
    public TimeSpan CollectEvery { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Keeps the pool's messages from growing without bound, as xapi does: on the master, every
/// <see cref="MessageOptions.CollectEvery"/>, the oldest messages beyond <see cref="MessageOptions.Limit"/> are
/// destroyed (clients see their <c>del</c> events). Counting is cheap; the messages are read only when over the limit.
/// </summary>
public sealed class MessageCollector(IPoolDatabase database, MasterState master, IOptions<MessageOptions> options,
    ILogger<MessageCollector> logger) : BackgroundService
{
    private static readonly EventId OverLimit = new(1402, "MessagesOverLimit");
    private const int DeletesPerTransaction = 100;

    /// <summary>Destroys the oldest messages beyond the limit; returns how many it destroyed.</summary>
    public async Task<int> CollectAsync(CancellationToken cancellationToken)
    {
        var limit = options.Value.Limit;
        if (await database.CountAsync(XenClasses.Message, cancellationToken) <= limit)
        {
            return 0;
        }

        var all = await database.GetAllAsync(XenClasses.Message, cancellationToken);
        var oldest = all.OrderBy(m => m.Get(XenApi.Message.Timestamp)).ThenBy(m => m.ModRevision).Take(all.Count - limit).ToList();
        logger.LogWarning(OverLimit, "{Count} messages, over the limit of {Limit}: destroying the {Excess} oldest", all.Count, limit, oldest.Count);
        var destroyed = (await database.TryDeleteAllAsync(oldest, cancellationToken, DeletesPerTransaction)).Count;
        if (destroyed < oldest.Count)
        {
            // A client destroyed one of them meanwhile; the next pass counts again.
            logger.LogDebug("Messages changed while being collected; the next pass counts again");
        }

        return destroyed;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CollectEvery);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!master.IsThisHost)
            {
                continue;
            }

            try
            {
                await CollectAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Collecting old messages failed; trying again in {Interval}", options.Value.CollectEvery);
            }
        }
    }
}
