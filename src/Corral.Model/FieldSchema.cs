namespace Corral.Model;

/// <summary>Who may write a field, in xe's spelling: RO (read only), RW, MRW (map whose keys are settable), SRO (static RO: set at creation).</summary>
public enum FieldAccess
{
    /// <summary>Runtime read-only: only Corral itself changes it.</summary>
    RO,

    /// <summary>Read-write: a setter exists.</summary>
    RW,

    /// <summary>Read-only, but given at creation (<c>create</c> takes it).</summary>
    SRO,
}

/// <summary>One field of a XenAPI class, named exactly as the XenAPI names it (<c>name_label</c>, <c>power_state</c>).</summary>
public sealed record FieldSchema(string Name, FieldType Type, FieldAccess Access, object? Default = null)
{
    public object? NewDefault() => Default is null ? Type.DefaultValue() : Type.Coerce(Default);

    /// <summary>True when the field is a map whose keys xe can set one at a time (<c>other-config:key=value</c>).</summary>
    public bool IsMap => Type is FieldType.MapOf;
}
