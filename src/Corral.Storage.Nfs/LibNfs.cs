using System.Runtime.InteropServices;

namespace Corral.Storage.Nfs;

/// <summary>
/// libnfs's synchronous calls (libnfs.so.13, Debian's libnfs13), as its header declares them. Every call blocks the
/// calling thread until the server answers; <see cref="NfsSession"/> runs them off the caller's async context.
/// </summary>
internal static partial class LibNfs
{
    private const string Library = "libnfs.so.13";

    public const int NfsV3 = 3;
    public const int NfsV4 = 4;

    [LibraryImport(Library, EntryPoint = "nfs_init_context")]
    public static partial IntPtr InitContext();

    [LibraryImport(Library, EntryPoint = "nfs_destroy_context")]
    public static partial void DestroyContext(IntPtr nfs);

    [LibraryImport(Library, EntryPoint = "nfs_get_error")]
    public static partial IntPtr GetError(IntPtr nfs);

    [LibraryImport(Library, EntryPoint = "nfs_set_version")]
    public static partial int SetVersion(IntPtr nfs, int version);

    [LibraryImport(Library, EntryPoint = "nfs_set_timeout")]
    public static partial void SetTimeout(IntPtr nfs, int milliseconds);

    [LibraryImport(Library, EntryPoint = "nfs_mount", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(IntPtr nfs, string server, string exportName);

    [LibraryImport(Library, EntryPoint = "nfs_umount")]
    public static partial int Umount(IntPtr nfs);

    [LibraryImport(Library, EntryPoint = "nfs_mkdir", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mkdir(IntPtr nfs, string path);

    [LibraryImport(Library, EntryPoint = "nfs_rmdir", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rmdir(IntPtr nfs, string path);

    [LibraryImport(Library, EntryPoint = "nfs_unlink", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unlink(IntPtr nfs, string path);

    [LibraryImport(Library, EntryPoint = "nfs_rename", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(IntPtr nfs, string oldPath, string newPath);

    [LibraryImport(Library, EntryPoint = "nfs_link", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Link(IntPtr nfs, string oldPath, string newPath);

    [LibraryImport(Library, EntryPoint = "nfs_stat64", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Stat64(IntPtr nfs, string path, out Stat64Buffer stat);

    [LibraryImport(Library, EntryPoint = "nfs_statvfs64", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatVfs64(IntPtr nfs, string path, out StatVfs64Buffer stat);

    [LibraryImport(Library, EntryPoint = "nfs_opendir", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int OpenDir(IntPtr nfs, string path, out IntPtr dir);

    /// <summary>The next entry (a <c>struct nfsdirent*</c>: next, name, inode, type...), or null at the end.</summary>
    [LibraryImport(Library, EntryPoint = "nfs_readdir")]
    public static partial IntPtr ReadDir(IntPtr nfs, IntPtr dir);

    [LibraryImport(Library, EntryPoint = "nfs_closedir")]
    public static partial void CloseDir(IntPtr nfs, IntPtr dir);

    [LibraryImport(Library, EntryPoint = "nfs_open", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(IntPtr nfs, string path, int flags, out IntPtr fh);

    /// <summary>Opens with <c>open(2)</c>'s flags, creating with <paramref name="mode"/> (nfs_creat opens NFSv4 files read-only).</summary>
    [LibraryImport(Library, EntryPoint = "nfs_open2", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open2(IntPtr nfs, string path, int flags, int mode, out IntPtr fh);

    [LibraryImport(Library, EntryPoint = "nfs_pread")]
    public static unsafe partial int PRead(IntPtr nfs, IntPtr fh, ulong offset, ulong count, byte* buffer);

    [LibraryImport(Library, EntryPoint = "nfs_pwrite")]
    public static unsafe partial int PWrite(IntPtr nfs, IntPtr fh, ulong offset, ulong count, byte* buffer);

    [LibraryImport(Library, EntryPoint = "nfs_fsync")]
    public static partial int Fsync(IntPtr nfs, IntPtr fh);

    [LibraryImport(Library, EntryPoint = "nfs_ftruncate")]
    public static partial int FTruncate(IntPtr nfs, IntPtr fh, ulong length);

    [LibraryImport(Library, EntryPoint = "nfs_close")]
    public static partial int Close(IntPtr nfs, IntPtr fh);

    /// <summary>The server's export list over MOUNT v3 (a <c>struct exportnode*</c> list: ex_dir, ex_groups, ex_next), or null.</summary>
    [LibraryImport(Library, EntryPoint = "mount_getexports", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr GetExports(string server);

    [LibraryImport(Library, EntryPoint = "mount_free_export_list")]
    public static partial void FreeExportList(IntPtr exports);

    /// <summary><c>struct nfs_stat_64</c>: seventeen 64-bit fields.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Stat64Buffer
    {
        public ulong Dev, Ino, Mode, Nlink, Uid, Gid, Rdev, Size, Blksize, Blocks, Atime, Mtime, Ctime, AtimeNsec, MtimeNsec, CtimeNsec, Used;
    }

    /// <summary><c>struct nfs_statvfs_64</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatVfs64Buffer
    {
        public ulong Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax;
    }
}
