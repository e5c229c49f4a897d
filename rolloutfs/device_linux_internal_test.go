package rolloutfs

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestGroupSyncableFilesystems: files on overlayfs (a container's root
// without a volume) are flushed each on its own, since a syncfs there does
// not report the failed writebacks of the filesystem under it; files on
// the others share one syncfs.
func TestGroupSyncableFilesystems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fsType int64
		want   bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"overlayfs", unix.OVERLAYFS_SUPER_MAGIC, false},
	} {
		if got := groupSyncable(tc.fsType); got != tc.want {
			t.Errorf("groupSyncable(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
