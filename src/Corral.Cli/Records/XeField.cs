using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>What a field's getter sees: the record, the invocation's cache of related records, and the session.</summary>
public sealed record FieldContext(XenRecord Record, PoolCache Cache, XenApiSession? Session);

/// <summary>
/// A class whose records a field reads (to print a reference as a uuid, or a metrics value). With
/// <see cref="ViaKey"/>, it is fetched only when some record actually points somewhere through that field.
/// </summary>
public sealed record ClassNeed(string ClassName, string? ViaKey = null);

/// <summary>Turns what the user typed into the value a XenAPI setter takes (may look things up, such as a uuid).</summary>
public delegate Task<object?> WireValue(XenApiSession session, string text, CancellationToken cancellationToken);

/// <summary>A change to one object (<paramref name="self"/>) taking one typed text: a set member, a map key.</summary>
public delegate Task ObjectChange(XenApiSession session, string self, string text, CancellationToken cancellationToken);

/// <summary>A change to one key of a map of one object.</summary>
public delegate Task MapEntryChange(XenApiSession session, string self, string key, string value, CancellationToken cancellationToken);

/// <summary>A change of a whole map of one object to the pairs given.</summary>
public delegate Task MapChange(XenApiSession session, string self, IReadOnlyList<KeyValuePair<string, string>> map, CancellationToken cancellationToken);

/// <summary><c>&lt;class&gt;.set_&lt;field&gt;(session, self, value)</c> (xe's <c>~set</c>).</summary>
public sealed record FieldSetter(string Method, WireValue ToWire);

/// <summary>
/// A map the user can add a key to and remove one from (xe's <c>~add_to_map</c> / <c>~remove_from_map</c>), usually
/// <c>add_to_&lt;field&gt;</c> / <c>remove_from_&lt;field&gt;</c>. <see cref="CheckKey"/> refuses a key before any call.
/// </summary>
public sealed record MapWriter(MapEntryChange Add, ObjectChange Remove, Func<string, string?>? CheckKey = null);

/// <summary>A set the user can add to and remove from (xe's <c>~add_to_set</c> / <c>~remove_from_set</c>).</summary>
public sealed record SetWriter(ObjectChange Add, ObjectChange Remove);

/// <summary>A map cleared at once by <c>set_&lt;field&gt;(session, self, {})</c> (xe's <c>~clear_map</c>).</summary>
public sealed record MapClearer(string Method);

/// <summary>
/// A map whose keys are set one by one with a call of their own (xe's <c>~set_in_map</c>: <c>Bond.set_property</c>):
/// settable by <c>param-set map:key=value</c>, yet read-only to param-add (its qualifier stays MRO).
/// </summary>
public sealed record MapEntrySetter(MapEntryChange Set);

/// <summary>
/// A map written whole (xe's <c>~set_map</c>): the pairs of one param-set replace it, and param-clear empties it.
/// </summary>
public sealed record MapReplacer(MapChange Replace);

/// <summary>
/// One xe parameter of a class (one <c>make_field</c> of xapi's records.ml): its dashed name, how its value prints,
/// and what the user may do with it. Its qualifier follows from that: a set is <c>SRO</c>/<c>SRW</c> (addable or not),
/// a map <c>MRO</c>/<c>MRW</c>, anything else <c> RO</c>/<c> RW</c> (settable or not).
/// </summary>
public sealed record XeField
{
    public required string Name { get; init; }

    /// <summary>The printed value, from the record and the cache.</summary>
    public Func<FieldContext, string> Get { get; init; } = _ => "";

    /// <summary>A value that takes a call to the server; null when the server does not offer that call.</summary>
    public Func<FieldContext, CancellationToken, Task<string?>>? Fetch { get; init; }

    public Func<FieldContext, IReadOnlyList<KeyValuePair<string, string>>>? GetMap { get; init; }

    public Func<FieldContext, IReadOnlyList<string>>? GetSet { get; init; }

    public FieldSetter? Setter { get; init; }

    public MapWriter? MapWrite { get; init; }

    public SetWriter? SetWrite { get; init; }

    public MapClearer? MapClear { get; init; }

    public MapEntrySetter? MapSetInMap { get; init; }

    public MapReplacer? MapReplace { get; init; }

    /// <summary>Left out of lists and param-list unless asked for by param-get.</summary>
    public bool Hidden { get; init; }

    /// <summary>Shown as &lt;expensive field&gt; in lists (it takes extra calls).</summary>
    public bool Expensive { get; init; }

    public bool Deprecated { get; init; }

    /// <summary>Matched without regard to case when selecting (MAC addresses).</summary>
    public bool CaseInsensitive { get; init; }

    /// <summary>The XenAPI fields (class, field) the value comes from; the parameter exists where they all do.</summary>
    public IReadOnlyList<(string ClassName, string Key)> Requires { get; init; } = [];

    public IReadOnlyList<ClassNeed> Needs { get; init; } = [];

    public bool IsMap => GetMap is not null;

    public bool IsSet => GetSet is not null;

    public string Qualifier =>
        IsSet ? (SetWrite is null ? "SRO" : "SRW")
        : IsMap ? (MapWrite is null ? "MRO" : "MRW")
        : Setter is null ? " RO" : " RW";

    /// <summary>The name as a record prints it: <c>name-label ( RW)</c>, <c>ha-always-run ( RW) [DEPRECATED]</c>.</summary>
    public string Label => $"{Name} ({Qualifier}){(Deprecated ? " [DEPRECATED]" : "")}";

    /// <summary>
    /// The printed value; null when it needs a call the server does not offer. A reference the server no longer knows
    /// prints as &lt;invalid reference&gt;, as in xe.
    /// </summary>
    public async Task<string?> ValueAsync(FieldContext context, CancellationToken cancellationToken)
    {
        if (Fetch is null)
        {
            return Get(context);
        }

        try
        {
            return await Fetch(context, cancellationToken);
        }
        catch (XenApiException ex) when (IsUnoffered(ex))
        {
            return null;
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid)
        {
            return "<invalid reference>";
        }
    }

    /// <summary>
    /// The server has no such call: unknown to it (<c>MESSAGE_METHOD_UNKNOWN</c>), or a XenAPI message it does not
    /// implement (<c>NOT_IMPLEMENTED</c>). A value that needs it is left out, as a field the model lacks is.
    /// </summary>
    public static bool IsUnoffered(XenApiException ex) => ex.Code is ErrorCodes.MessageMethodUnknown or ErrorCodes.NotImplemented;

    /// <summary>Whether <c>param-set name:key=value</c> can change the map (xe's settable <c>name:</c>).</summary>
    public bool IsMapSettable => MapWrite is not null || MapSetInMap is not null || MapReplace is not null;

    public override string ToString() => Label;
}
