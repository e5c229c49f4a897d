package manager

import (
	"context"
	"fmt"
	"io"
)

// ReadAfter returns the thread's complete lines from position from in its
// history (a reference fork's base part included) up to the history's
// indexed end when the call is made, and that size. from must be
// 0 or the offset just past a line (the Size of an EventAppended, or a
// previous ReadAfter's end): any other offset, or one past the indexed
// size, fails with an error wrapping ErrInvalidArgument. Reading from the
// end returns an empty reader. With Subscribe, it lets a caller follow a
// thread without gaps or duplicates: subscribe first, read from the last
// offset, then read again from the new end after each EventAppended of the
// thread. The caller closes the reader.
func (m *Manager) ReadAfter(ctx context.Context, id string, from int64) (io.ReadCloser, int64, error) {
	if err := m.begin(); err != nil {
		return nil, 0, err
	}
	defer m.ops.Done()
	id, err := parseID("read", id)
	if err != nil {
		return nil, 0, err
	}
	row, f, err := m.openRead(ctx, id)
	if err != nil {
		return nil, 0, threadErr(id, err, "read after offset %d", from)
	}
	end := row.HistorySize()
	if from < 0 || from > end {
		f.Close()
		return nil, 0, fmt.Errorf("read %s after offset %d: %w: the thread has %d bytes", id, from, ErrInvalidArgument, end)
	}
	if from > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], from-1); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("read %s after offset %d: %w", id, from, err)
		}
		if last[0] != '\n' {
			f.Close()
			return nil, 0, fmt.Errorf("read %s after offset %d: %w: not the start of a line", id, from, ErrInvalidArgument)
		}
	}
	return &history{SectionReader: io.NewSectionReader(f, from, end-from), f: f}, end, nil
}
