using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// VTPM records and their contents, as xapi keeps them: the TPM's state (base64) is the value of a <c>secret</c>
/// object, which xapi's internal field <c>VTPM.contents</c> names; Corral keeps that link under
/// <see cref="PoolKeys.VtpmContentsKey"/>. A VTPM, its secret and the link are made and removed together. Used by the
/// VTPM messages, the VM's host (which restores the state at start and writes it back) and VM copies and snapshots.
/// </summary>
public static class VtpmRecords
{
    /// <summary>A VTPM with the secret holding its contents (null for a record made by hand), read before a transaction.</summary>
    public sealed record Stored(XenObject Vtpm, XenObject? Secret)
    {
        public string Contents => Secret?.Get(XenApi.Secret.Value) ?? "";
    }

    /// <summary>The VM's VTPMs with their secrets, for a transaction that copies or removes them.</summary>
    public static async Task<IReadOnlyList<Stored>> ReadAsync(IPoolDatabase database, XenObject vm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(vm);
        var stored = new List<Stored>();
        foreach (var vtpmRef in vm.Get(XenApi.VM.VTPMs))
        {
            if (await database.TryGetAsync(XenApi.VTPM.ClassName, vtpmRef, cancellationToken) is { } vtpm)
            {
                stored.Add(new Stored(vtpm, await SecretAsync(database, vtpmRef, cancellationToken)));
            }
        }

        return stored;
    }

    /// <summary>
    /// Adds to <paramref name="tx"/> a copy of <paramref name="from"/> for <paramref name="toVmRef"/> (a clone, copy,
    /// snapshot or revert), as xapi's <c>Xapi_vtpm.copy</c>: a secret of its own with the same contents, except that a
    /// unique VTPM's contents are never copied: its copy is a new TPM.
    /// </summary>
    public static XenObject CopyInto(PoolTransaction tx, Stored from, string toVmRef)
    {
        ArgumentNullException.ThrowIfNull(from);
        var unique = from.Vtpm.Get(XenApi.VTPM.IsUnique);
        return Create(tx, toVmRef, unique, unique ? "" : from.Contents);
    }

    /// <summary>Adds the removal of the VTPM, its secret and their link to <paramref name="tx"/>.</summary>
    public static void Delete(PoolTransaction tx, Stored stored)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(stored);
        if (stored.Secret is { } secret)
        {
            tx.Delete(secret);
        }

        tx.DeleteKey(PoolKeys.VtpmContentsKey(stored.Vtpm.Ref));
        tx.Delete(stored.Vtpm);
    }

    /// <summary>
    /// Adds a VTPM for <paramref name="vmRef"/> to <paramref name="tx"/>, with its secret holding
    /// <paramref name="contents"/> (base64; empty for a new TPM). persistence_backend is xapi's only one, <c>xapi</c>.
    /// </summary>
    public static XenObject Create(PoolTransaction tx, string vmRef, bool isUnique, string contents = "")
    {
        ArgumentNullException.ThrowIfNull(tx);
        var secret = SecretRecords.Create(tx, contents);
        var vtpm = tx.Create(XenApi.VTPM.Schema);
        vtpm.Set(XenApi.VTPM.VM, vmRef);
        vtpm.Set(XenApi.VTPM.Backend, OpaqueRef.Null);
        vtpm.Set(XenApi.VTPM.PersistenceBackend, PersistenceBackend.Xapi);
        vtpm.Set(XenApi.VTPM.IsUnique, isUnique);
        vtpm.Set(XenApi.VTPM.IsProtected, false);
        tx.PutKey(PoolKeys.VtpmContentsKey(vtpm.Ref), secret.Ref);
        return vtpm;
    }

    /// <summary>The secret holding the VTPM's contents; null if it has none (a record made by hand).</summary>
    public static async Task<XenObject?> SecretAsync(IPoolDatabase database, string vtpmRef, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var secretRef = await database.Leases.GetValueAsync(PoolKeys.VtpmContentsKey(vtpmRef), cancellationToken);
        return secretRef is null ? null : await database.TryGetAsync(XenApi.Secret.ClassName, secretRef, cancellationToken);
    }

    /// <summary>The VTPM's contents (base64 of the TPM's state; empty for a TPM never run).</summary>
    public static async Task<string> ContentsAsync(IPoolDatabase database, string vtpmRef, CancellationToken cancellationToken) =>
        (await SecretAsync(database, vtpmRef, cancellationToken))?.Get(XenApi.Secret.Value) ?? "";

    /// <summary>Replaces the VTPM's contents (base64, checked by the caller); a VTPM without a secret gets one.</summary>
    public static async Task SetContentsAsync(IPoolDatabase database, string vtpmRef, string contents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        if (await SecretAsync(database, vtpmRef, cancellationToken) is { } secret)
        {
            if (secret.Get(XenApi.Secret.Value) != contents)
            {
                await database.UpdateAsync([(XenApi.Secret.ClassName, secret.Ref)], (objs, tx) =>
                {
                    var changed = objs[0].Clone();
                    changed.Set(XenApi.Secret.Value, contents);
                    tx.Update(changed);
                }, cancellationToken);
            }

            return;
        }

        var made = new PoolTransaction();
        var created = SecretRecords.Create(made, contents);
        made.PutKey(PoolKeys.VtpmContentsKey(vtpmRef), created.Ref);
        await database.CommitAsync(made, cancellationToken);
    }

    /// <summary>Adds the removal of the VTPM, its secret and their link to <paramref name="tx"/>.</summary>
    public static async Task DeleteAsync(IPoolDatabase database, PoolTransaction tx, XenObject vtpm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(vtpm);
        Delete(tx, new Stored(vtpm, await SecretAsync(database, vtpm.Ref, cancellationToken)));
    }

    /// <summary>
    /// Adds to <paramref name="tx"/> a copy of each of <paramref name="fromVm"/>'s VTPMs for <paramref name="toVmRef"/>
    /// (a clone, copy or snapshot), as xapi's <c>Xapi_vtpm.copy</c>: the same contents, except that a unique VTPM's
    /// contents are never copied, its copy is a new TPM. Returns the new VTPMs.
    /// </summary>
    public static async Task<IReadOnlyList<XenObject>> CopyIntoAsync(IPoolDatabase database, PoolTransaction tx, XenObject fromVm, string toVmRef,
        CancellationToken cancellationToken)
    {
        return (await ReadAsync(database, fromVm, cancellationToken)).Select(stored => CopyInto(tx, stored, toVmRef)).ToList();
    }

    /// <summary><see cref="CopyIntoAsync"/> in a transaction of its own: for a VM that exists already.</summary>
    public static async Task<IReadOnlyList<string>> CopyAsync(IPoolDatabase database, string fromVmRef, string toVmRef, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var fromVm = await database.GetAsync(XenClasses.VM, fromVmRef, cancellationToken);
        var tx = new PoolTransaction();
        var copies = await CopyIntoAsync(database, tx, fromVm, toVmRef, cancellationToken);
        if (!tx.IsEmpty)
        {
            await database.CommitAsync(tx, cancellationToken);
        }

        return copies.Select(c => c.Ref).ToList();
    }
}
