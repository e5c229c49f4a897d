package store

import (
	"context"
	"testing"
)

// TestUpdatedAtBoundedByMtime (issue #13): whoever writes a row, its
// updated_at is at most its file's mtime plus a minute, the unbounded
// value is kept so the bound follows the mtime as the file grows, and a
// rescan of a rewritten file replaces it.
func TestUpdatedAtBoundedByMtime(t *testing.T) {
	const (
		minute = int64(60_000)
		mtime  = int64(1_800_000_000_000) // ms
		future = int64(4_070_908_800_000) // 2099
		ns     = int64(1_000_000)         // ns per ms
		id     = "019a0000-0000-7000-8000-0000000000d4"
	)
	ctx := context.Background()
	tests := []struct {
		name  string
		write func(t *testing.T, s *Store)
		want  int64
	}{
		{"insert in the past is kept", func(t *testing.T, s *Store) {
			th := newThread(id, mtime-minute)
			th.FileMtime = mtime * ns
			mustInsert(t, s, Record{Thread: th})
		}, mtime - minute},
		{"insert in the future is bounded", func(t *testing.T, s *Store) {
			th := newThread(id, mtime)
			th.UpdatedAt, th.FileMtime = future, mtime*ns
			mustInsert(t, s, Record{Thread: th})
		}, mtime + minute},
		{"no mtime, no bound", func(t *testing.T, s *Store) {
			th := newThread(id, mtime)
			th.UpdatedAt = future
			mustInsert(t, s, Record{Thread: th})
		}, future},
		{"advance moves the bound with the mtime", func(t *testing.T, s *Store) {
			th := newThread(id, mtime)
			th.UpdatedAt, th.FileMtime = future, mtime*ns
			mustInsert(t, s, Record{Thread: th})
			row, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// An append an hour later, passing the row's (bounded) value
			// as Tracker.Progress does.
			if err := s.Advance(ctx, Progress{ID: id, LineCount: 2, IndexedSize: 10, FileSize: 10,
				FileMtime: (mtime + 60*minute) * ns, UpdatedAt: row.UpdatedAt}); err != nil {
				t.Fatal(err)
			}
		}, mtime + 61*minute},
		{"file state alone moves the bound", func(t *testing.T, s *Store) {
			th := newThread(id, mtime)
			th.UpdatedAt, th.FileMtime = future, mtime*ns
			mustInsert(t, s, Record{Thread: th})
			if err := s.SetFileState(ctx, id, 10, (mtime+5*minute)*ns); err != nil {
				t.Fatal(err)
			}
		}, mtime + 6*minute},
		{"rescan of a rewritten file replaces the unbounded value", func(t *testing.T, s *Store) {
			th := newThread(id, mtime)
			th.UpdatedAt, th.FileMtime = future, mtime*ns
			mustInsert(t, s, Record{Thread: th})
			th.UpdatedAt, th.FileMtime = mtime-minute, (mtime+60*minute)*ns
			if err := s.Replace(ctx, []Record{{Thread: th}}); err != nil {
				t.Fatal(err)
			}
		}, mtime - minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			tt.write(t, s)
			got, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.UpdatedAt != tt.want {
				t.Fatalf("updated_at = %d, want %d", got.UpdatedAt, tt.want)
			}
		})
	}
}
