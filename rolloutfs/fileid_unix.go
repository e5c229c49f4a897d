//go:build unix

package rolloutfs

import (
	"io/fs"
	"syscall"
)

// fileID returns the device and inode number of the file st describes.
func fileID(st fs.FileInfo) FileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return FileID{Dev: uint64(s.Dev), Ino: uint64(s.Ino)}
	}
	return FileID{}
}
