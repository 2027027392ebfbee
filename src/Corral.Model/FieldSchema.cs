namespace Corral.Model;

/// <summary>Who may write a field, in xe's spelling: RO (read only), RW, MRW (map whose keys are settable), SRO (static RO: set at creation).</summary>
public enum FieldAccess
{
    /// <summary>Runtime read-only: only Corral itself changes it (xapi's <c>RO/runtime</c>).</summary>
    RO,

    /// <summary>Read-write: a setter exists.</summary>
    RW,

    /// <summary>Read-only, but given at creation: <c>create</c> takes it (xapi's <c>RO/constructor</c>).</summary>
    SRO,
}

/// <summary>One field of a XenAPI class, named exactly as the XenAPI names it (<c>name_label</c>, <c>power_state</c>).</summary>
/// <param name="Default">The value a new object gets: the datamodel's default, or Corral's where it sets its own.</param>
/// <param name="DefaultDeclared">
/// The datamodel gives this field a default. A constructor (<c>VM.create</c>) requires the fields it takes
/// (<see cref="FieldAccess.RW"/> and <see cref="FieldAccess.SRO"/>) that have none.
/// </param>
public sealed record FieldSchema(string Name, FieldType Type, FieldAccess Access, object? Default = null, bool DefaultDeclared = false)
{
    public object? NewDefault() => Default is null ? Type.DefaultValue() : Type.Coerce(Default);

    /// <summary>True when the field is a map whose keys xe can set one at a time (<c>other-config:key=value</c>).</summary>
    public bool IsMap => Type is FieldType.MapOf;

    /// <summary>True when a constructor takes this field from the caller's record.</summary>
    public bool InConstructor => Access is FieldAccess.RW or FieldAccess.SRO;

    /// <summary>True when a constructor's record must carry this field.</summary>
    public bool RequiredInConstructor => InConstructor && !DefaultDeclared;
}
