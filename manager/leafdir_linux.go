package manager

import (
	"io/fs"
	"syscall"
)

// noSubdirs reports whether the directory described by fi certainly has no
// subdirectories: on Linux file systems that count them (ext4, xfs, tmpfs)
// a directory's link count is two plus its subdirectories. Btrfs and
// others report 1, which says nothing.
func noSubdirs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 2
}
