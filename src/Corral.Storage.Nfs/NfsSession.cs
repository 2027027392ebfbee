using System.Runtime.InteropServices;

namespace Corral.Storage.Nfs;

/// <summary>An NFS call that failed: libnfs's negative errno and its own message.</summary>
public sealed class NfsException(string operation, string path, int errno, string message)
    : IOException($"NFS {operation} {path}: {message}")
{
    public string Operation { get; } = operation;

    /// <summary>The errno libnfs returned (positive: 2 is ENOENT, 17 EEXIST, 39 ENOTEMPTY).</summary>
    public int Errno { get; } = errno;

    public bool NotFound => Errno == 2;
}

/// <summary>A directory entry as libnfs lists it.</summary>
public sealed record NfsEntry(string Name, bool IsDirectory);

/// <summary>
/// One export mounted through libnfs (no kernel mount: the RPCs go from this process). Paths are relative to the export,
/// starting with '/'. Not thread-safe: one caller at a time, as libnfs's synchronous API requires; dispose to unmount.
/// </summary>
public sealed class NfsSession : IDisposable
{
    private IntPtr _nfs;

    private NfsSession(IntPtr nfs) => _nfs = nfs;

    public string Server { get; private init; } = "";

    public string Export { get; private init; } = "";

    /// <summary>Mounts <paramref name="export"/> of <paramref name="server"/> with NFS <paramref name="version"/> (3 or 4).</summary>
    /// <exception cref="NfsException">The export could not be mounted.</exception>
    public static NfsSession Mount(string server, string export, int version, TimeSpan timeout)
    {
        var nfs = LibNfs.InitContext();
        if (nfs == IntPtr.Zero)
        {
            throw new NfsException("init", server, 12, "libnfs could not make a context");
        }

        var session = new NfsSession(nfs) { Server = server, Export = export };
        try
        {
            LibNfs.SetTimeout(nfs, (int)timeout.TotalMilliseconds);
            session.Check("set-version", export, LibNfs.SetVersion(nfs, version == 4 ? LibNfs.NfsV4 : LibNfs.NfsV3));
            session.Check("mount", $"{server}:{export}", LibNfs.Mount(nfs, server, export));
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The exports <paramref name="server"/> lists over MOUNT v3 (as showmount -e does), with the hosts each is open to.</summary>
    public static IReadOnlyList<(string Path, IReadOnlyList<string> Groups)> Exports(string server)
    {
        var list = LibNfs.GetExports(server);
        if (list == IntPtr.Zero)
        {
            throw new NfsException("getexports", server, 5, "the server's mount service gave no export list");
        }

        try
        {
            var exports = new List<(string, IReadOnlyList<string>)>();
            // struct exportnode { char *ex_dir; struct groupnode *ex_groups; struct exportnode *ex_next; }
            for (var node = list; node != IntPtr.Zero; node = Marshal.ReadIntPtr(node, 2 * IntPtr.Size))
            {
                var groups = new List<string>();
                // struct groupnode { char *gr_name; struct groupnode *gr_next; }
                for (var g = Marshal.ReadIntPtr(node, IntPtr.Size); g != IntPtr.Zero; g = Marshal.ReadIntPtr(g, IntPtr.Size))
                {
                    groups.Add(Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(g)) ?? "");
                }

                exports.Add((Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(node)) ?? "", groups));
            }

            return exports;
        }
        finally
        {
            LibNfs.FreeExportList(list);
        }
    }

    public void CreateDirectory(string path) => Check("mkdir", path, LibNfs.Mkdir(Context, path));

    public void RemoveDirectory(string path) => Check("rmdir", path, LibNfs.Rmdir(Context, path));

    public void Delete(string path) => Check("unlink", path, LibNfs.Unlink(Context, path));

    public void Rename(string from, string to) => Check("rename", from, LibNfs.Rename(Context, from, to));

    /// <summary>A hard link: fails (EEXIST, 17) when <paramref name="to"/> exists, so that of racing creators one wins.</summary>
    public void Link(string from, string to) => Check("link", to, LibNfs.Link(Context, from, to));

    /// <summary>The size of the file at <paramref name="path"/> and whether it is a directory, or null when nothing is there.</summary>
    public (long Size, bool IsDirectory)? Stat(string path)
    {
        var rc = LibNfs.Stat64(Context, path, out var stat);
        if (rc == -2)
        {
            return null;
        }

        Check("stat", path, rc);
        const ulong typeMask = 0xF000, directory = 0x4000;
        return ((long)stat.Size, (stat.Mode & typeMask) == directory);
    }

    /// <summary>Bytes in the filesystem behind the export, and bytes free to an unprivileged writer.</summary>
    public (long Total, long Available) Usage(string path)
    {
        Check("statvfs", path, LibNfs.StatVfs64(Context, path, out var vfs));
        var unit = vfs.Frsize != 0 ? vfs.Frsize : vfs.Bsize;
        return ((long)(vfs.Blocks * unit), (long)(vfs.Bavail * unit));
    }

    public IReadOnlyList<NfsEntry> List(string path)
    {
        Check("opendir", path, LibNfs.OpenDir(Context, path, out var dir));
        try
        {
            var entries = new List<NfsEntry>();
            // struct nfsdirent { struct nfsdirent *next; char *name; uint64_t inode; uint32_t type; ... }: NF3DIR is 2.
            for (var e = LibNfs.ReadDir(Context, dir); e != IntPtr.Zero; e = LibNfs.ReadDir(Context, dir))
            {
                var name = Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(e, IntPtr.Size)) ?? "";
                if (name is not ("." or ".."))
                {
                    entries.Add(new NfsEntry(name, Marshal.ReadInt32(e, 2 * IntPtr.Size + 8) == 2));
                }
            }

            return entries;
        }
        finally
        {
            LibNfs.CloseDir(Context, dir);
        }
    }

    public unsafe byte[] ReadAll(string path)
    {
        var size = Stat(path)?.Size ?? throw new NfsException("open", path, 2, "No such file or directory");
        const int readOnly = 0;
        Check("open", path, LibNfs.Open(Context, path, readOnly, out var fh));
        try
        {
            var data = new byte[size];
            var done = 0;
            while (done < data.Length)
            {
                int rc;
                fixed (byte* p = &data[done])
                {
                    rc = LibNfs.PRead(Context, fh, (ulong)done, (ulong)(data.Length - done), p);
                }

                Check("read", path, rc);
                done += rc > 0 ? rc : throw new NfsException("read", path, 5, "the file ended early");
            }

            return data;
        }
        finally
        {
            _ = LibNfs.Close(Context, fh);
        }
    }

    /// <summary>Creates <paramref name="path"/> (it must not exist), writes <paramref name="data"/> and syncs it to the server's disk.</summary>
    public unsafe void WriteNew(string path, ReadOnlySpan<byte> data)
    {
        const int mode = 0x1A4; // 0644
        const int writeOnlyCreateTruncate = 0x1 | 0x40 | 0x200; // O_WRONLY | O_CREAT | O_TRUNC
        Check("create", path, LibNfs.Open2(Context, path, writeOnlyCreateTruncate, mode, out var fh));
        try
        {
            var done = 0;
            while (done < data.Length)
            {
                int rc;
                fixed (byte* p = &data[done])
                {
                    rc = LibNfs.PWrite(Context, fh, (ulong)done, (ulong)(data.Length - done), p);
                }

                Check("write", path, rc);
                done += rc > 0 ? rc : throw new NfsException("write", path, 5, "the server took no data");
            }

            Check("fsync", path, LibNfs.Fsync(Context, fh));
        }
        finally
        {
            _ = LibNfs.Close(Context, fh);
        }
    }

    /// <summary>Creates <paramref name="path"/> (it must not exist) <paramref name="size"/> bytes long, unwritten (it reads as zeros), synced.</summary>
    public void CreateSized(string path, long size)
    {
        const int mode = 0x1A4; // 0644
        const int writeOnlyCreateExclusive = 0x1 | 0x40 | 0x80; // O_WRONLY | O_CREAT | O_EXCL
        Check("create", path, LibNfs.Open2(Context, path, writeOnlyCreateExclusive, mode, out var fh));
        try
        {
            Check("ftruncate", path, LibNfs.FTruncate(Context, fh, (ulong)size));
            Check("fsync", path, LibNfs.Fsync(Context, fh));
        }
        finally
        {
            _ = LibNfs.Close(Context, fh);
        }
    }

    private IntPtr Context => _nfs != IntPtr.Zero ? _nfs : throw new ObjectDisposedException(nameof(NfsSession));

    private void Check(string operation, string path, int rc)
    {
        if (rc < 0)
        {
            var message = Marshal.PtrToStringUTF8(LibNfs.GetError(_nfs)) ?? $"error {-rc}";
            throw new NfsException(operation, path, -rc, message);
        }
    }

    public void Dispose()
    {
        var nfs = Interlocked.Exchange(ref _nfs, IntPtr.Zero);
        if (nfs != IntPtr.Zero)
        {
            // Destroying the context closes its connections; a v3 mount also tells the server's mount service it is gone.
            LibNfs.DestroyContext(nfs);
        }
    }
}
