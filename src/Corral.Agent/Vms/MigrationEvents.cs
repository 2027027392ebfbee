using Microsoft.Extensions.Logging;

namespace Corral.Agent.Vms;

/// <summary>Event ids of a live migration's decisions, on the source's and the destination's side.</summary>
public static class MigrationEvents
{
    public static readonly EventId Started = new(2001, nameof(Started));
    public static readonly EventId SwitchoverReleased = new(2002, nameof(SwitchoverReleased));
    public static readonly EventId Committed = new(2003, nameof(Committed));
    public static readonly EventId Aborted = new(2004, nameof(Aborted));
    public static readonly EventId Migrated = new(2005, nameof(Migrated));
    public static readonly EventId SourceGoneDiscarded = new(2010, nameof(SourceGoneDiscarded));
    public static readonly EventId SourceGoneEnded = new(2011, nameof(SourceGoneEnded));
    public static readonly EventId ArrivedWithoutProcess = new(2012, nameof(ArrivedWithoutProcess));
    public static readonly EventId ResumedOnArrival = new(2013, nameof(ResumedOnArrival));
    public static readonly EventId CancelledAtConclusion = new(2020, nameof(CancelledAtConclusion));
    public static readonly EventId Superseded = new(2021, nameof(Superseded));
}
