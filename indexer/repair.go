package indexer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spoolhq/spool/rollout"
	"github.com/spoolhq/spool/store"
)

// TornSuffix starts the extension of the side file that keeps the bytes
// Repair cut from a rollout: <rollout name>.torn-<unix nanoseconds>. Such a
// name does not parse as a rollout name, so Walk ignores it.
const TornSuffix = ".torn-"

// Cut is a torn tail that Repair removed from a rollout file.
type Cut struct {
	Path     string `json:"path"`      // the rollout, relative to the root
	Offset   int64  `json:"offset"`    // where the torn bytes started: the file's new size
	Length   int64  `json:"length"`    // how many bytes were cut
	SideFile string `json:"side_file"` // where they are kept, relative to the root
}

// RepairReport is what Repair did.
type RepairReport struct {
	Cuts []Cut   `json:"cuts"`
	Sync Summary `json:"sync"`
}

// Repair cuts the torn tail (the bytes after the last newline) off every
// rollout file under root, keeping the cut bytes in a side file next to it
// (<name>.torn-<unix nanoseconds>, fsynced before the cut), and then
// brings the index up to date with an incremental Sync. It never touches a
// complete line. Nobody may append to the files meanwhile: hold the
// root's lock.
func Repair(ctx context.Context, st *store.Store, root string, opts SyncOptions) (RepairReport, error) {
	var rep RepairReport
	paths, err := Walk(ctx, root)
	if err != nil {
		return rep, fmt.Errorf("repair %s: %w", root, err)
	}
	for _, rel := range paths {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("repair %s: %w", root, err)
		}
		cut, ok, err := cutTornTail(ctx, root, rel)
		if err != nil {
			return rep, fmt.Errorf("repair %s: %w", root, err)
		}
		if ok {
			rep.Cuts = append(rep.Cuts, cut)
		}
	}
	rep.Sync, err = Sync(ctx, st, root, opts)
	if err != nil {
		return rep, fmt.Errorf("repair %s: %w", root, err)
	}
	return rep, nil
}

// cutTornTail saves and cuts the torn tail of one file, if it has one.
func cutTornTail(ctx context.Context, root, rel string) (Cut, bool, error) {
	abs := filepath.Join(root, filepath.FromSlash(rel))
	offset, data, err := readTornTail(abs)
	if err != nil || data == nil {
		return Cut{}, false, err
	}
	side := abs + TornSuffix + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := writeSideFile(side, data); err != nil {
		return Cut{}, false, err
	}
	tail, err := rollout.CutTornTail(ctx, abs)
	if err != nil {
		return Cut{}, false, err
	}
	if tail == nil {
		// The file ended cleanly after all (someone completed the line).
		if err := os.Remove(side); err != nil {
			return Cut{}, false, fmt.Errorf("remove %s: %w", side, err)
		}
		return Cut{}, false, nil
	}
	if tail.Offset != offset || !bytes.Equal(tail.Data, data) {
		// The tail changed between reading and cutting: keep what was cut.
		if err := writeSideFile(side, tail.Data); err != nil {
			return Cut{}, false, err
		}
	}
	sideRel, err := filepath.Rel(root, side)
	if err != nil {
		return Cut{}, false, fmt.Errorf("side file %s: %w", side, err)
	}
	return Cut{Path: rel, Offset: tail.Offset, Length: int64(len(tail.Data)), SideFile: filepath.ToSlash(sideRel)}, true, nil
}

// tailChunk is how much readTornTail reads at a time, backwards.
const tailChunk = 64 << 10

// readTornTail returns the offset and bytes after the last newline of the
// file at path (nil bytes when it ends with a newline or is empty).
func readTornTail(path string) (int64, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("read tail: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("read tail: %w", err)
	}
	size := fi.Size()
	end := size
	buf := make([]byte, tailChunk)
	for end > 0 {
		start := max(end-tailChunk, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, nil, fmt.Errorf("read tail of %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			end = start + int64(i) + 1
			break
		}
		end = start
	}
	if end == size {
		return size, nil, nil
	}
	data := make([]byte, size-end)
	if _, err := f.ReadAt(data, end); err != nil {
		return 0, nil, fmt.Errorf("read tail of %s: %w", path, err)
	}
	return end, data, nil
}

// writeSideFile writes data durably to path.
func writeSideFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("side file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write side file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync side file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close side file %s: %w", path, err)
	}
	if err := rollout.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}
