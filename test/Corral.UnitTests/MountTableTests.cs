using Corral.Platform;
using Xunit;

namespace Corral.UnitTests;

public sealed class MountTableTests
{
    private static readonly string[] MountInfo =
    [
        "26 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw",
        "147 26 0:42 / /run/corral/ha/a.statefile rw,nosuid,nodev,relatime - fuse /dev/fuse rw,user_id=0,group_id=0",
        "150 26 0:45 / /var/lib/corral/sr-mount/my\\040share/mnt rw,relatime - fuse.smbnetfs smbnetfs rw",
    ];

    [Fact]
    public void The_file_system_at_a_mount_point_is_its_type_with_optional_fields_and_escapes_read()
    {
        Assert.Equal("fuse", MountTable.FileSystemAt(MountInfo, "/run/corral/ha/a.statefile"));
        Assert.Equal("fuse.smbnetfs", MountTable.FileSystemAt(MountInfo, "/var/lib/corral/sr-mount/my share/mnt"));
        Assert.Equal("ext4", MountTable.FileSystemAt(MountInfo, "/"));
        Assert.Null(MountTable.FileSystemAt(MountInfo, "/run/corral/ha"));
        Assert.Null(MountTable.FileSystemAt(MountInfo, "/var/lib/corral/sr-mount/my\\040share/mnt"));
    }
}
