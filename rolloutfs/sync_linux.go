package rolloutfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// control runs fn with f's descriptor, keeping it open meanwhile.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

// retryEINTR calls fn until it is not interrupted.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// fdatasync flushes f's data (and the metadata needed to read it back).
func fdatasync(f *os.File) error {
	err := control(f, func(fd int) error { return retryEINTR(func() error { return unix.Fdatasync(fd) }) })
	if err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

// startFileWriteback asks the kernel to start writing f's bytes
// [off, off+n) to the disk, without waiting for them
// (SYNC_FILE_RANGE_WRITE). It is a hint, and its error is dropped: the
// fsync that follows is what makes the bytes durable, and it reports an
// error of this writeback too.
func startFileWriteback(f *os.File, off, n int64) {
	_ = control(f, func(fd int) error {
		return retryEINTR(func() error { return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE) })
	})
}

// syncfs flushes the whole filesystem holding f.
func syncfs(f *os.File) error {
	err := control(f, func(fd int) error { return retryEINTR(func() error { return unix.Syncfs(fd) }) })
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", f.Name(), err)
	}
	return nil
}

// checkWriteback reports a failed writeback of f's data that f's handle
// has not been told of: sync_file_range's wait, which writes and flushes
// nothing, returns the error the file's mapping recorded since this
// handle last looked (as fdatasync would, without its flush).
func checkWriteback(f *os.File) error {
	err := control(f, func(fd int) error {
		return retryEINTR(func() error { return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WAIT_BEFORE) })
	})
	if err != nil {
		return fmt.Errorf("writeback of %s: %w", f.Name(), err)
	}
	return nil
}

// errNoGroupSync makes a GroupSyncer flush a file on its own: one syncfs
// of its filesystem would not report a failed writeback of its data.
var errNoGroupSync = errors.New("syncfs does not report this filesystem's failed writebacks")

// device returns the device number of the filesystem holding f, or
// errNoGroupSync where a syncfs, and a check of f's writeback after it,
// would miss a failed writeback: overlayfs (a container's root without a
// volume) passes a syncfs on to the filesystem under it, but not that
// filesystem's errors, and its own files never record them; an fdatasync
// of the file reaches the file under it and does report them.
func device(f *os.File) (uint64, error) {
	var st unix.Stat_t
	var fs unix.Statfs_t
	err := control(f, func(fd int) error {
		if err := unix.Fstatfs(fd, &fs); err != nil {
			return err
		}
		return unix.Fstat(fd, &st)
	})
	if err == nil && !groupSyncable(int64(fs.Type)) {
		err = errNoGroupSync
	}
	return uint64(st.Dev), err // Dev's integer type varies by platform
}

// groupSyncable reports whether one syncfs of a filesystem of type
// fsType (statfs's f_type) reports the failed writebacks of its files.
func groupSyncable(fsType int64) bool {
	return fsType != unix.OVERLAYFS_SUPER_MAGIC
}

// copyFileRange copies n bytes from src at srcOff to dst at dstOff in the
// kernel, leaving both file offsets alone. It returns how many bytes it
// copied; fewer than n with a nil error means the caller copies the rest.
func copyFileRange(dst *os.File, dstOff int64, src *localReadFile, srcOff, n int64) (int64, error) {
	src.mu.RLock()
	defer src.mu.RUnlock()
	if src.fd < 0 {
		return 0, fmt.Errorf("copy_file_range %s: %w", src.name, os.ErrClosed)
	}
	var done int64
	err := control(dst, func(dfd int) error {
		for done < n {
			so, do := srcOff+done, dstOff+done
			c, err := unix.CopyFileRange(src.fd, &so, dfd, &do, int(min(n-done, 1<<30)), 0)
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EXDEV), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP):
				return nil // not here: the caller copies through user space
			case err != nil:
				return err
			case c == 0:
				return nil // src is shorter than asked: the caller reports it
			}
			done += int64(c)
		}
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("copy_file_range %s to %s: %w", src.name, dst.Name(), err)
	}
	return done, nil
}
