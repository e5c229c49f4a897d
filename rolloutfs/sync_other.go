//go:build !linux

package rolloutfs

import (
	"errors"
	"os"
)

// fdatasync flushes f. On systems without fdatasync, Sync (F_FULLFSYNC on
// macOS) does it.
func fdatasync(f *os.File) error { return f.Sync() }

// errNoSyncfs makes a GroupSyncer flush each file on its own.
var errNoSyncfs = errors.New("syncfs is not available")

func syncfs(*os.File) error { return errNoSyncfs }

func device(*os.File) (uint64, error) { return 0, errNoSyncfs }

// startFileWriteback does nothing: the fsync that ends a fill writes it all.
func startFileWriteback(*os.File, int64, int64) {}

// checkWriteback flushes f: without syncfs no batch needs the check.
func checkWriteback(f *os.File) error { return fdatasync(f) }

// copyFileRange copies nothing: the caller copies through user space.
func copyFileRange(*os.File, int64, *localReadFile, int64, int64) (int64, error) { return 0, nil }
