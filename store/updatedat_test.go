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

// TestInsertSkipsTriggerWithSameRow: Insert and Replace pass newest_at so
// that the insert trigger has nothing to do within the bound (migration
// 00009); the row must be the one the trigger gives an insert that leaves
// newest_at to it, within the bound, at it, past it and without an mtime.
func TestInsertSkipsTriggerWithSameRow(t *testing.T) {
	const (
		minute = int64(60_000)
		mtime  = int64(1_800_000_000_000) // ms
		ns     = int64(1_000_000)         // ns per ms
		id     = "019a0000-0000-7000-8000-0000000000d5"
	)
	tests := []struct {
		name             string
		updatedAt, mtime int64 // ms
	}{
		{"in the past", mtime - minute, mtime},
		{"at the bound", mtime + minute, mtime},
		{"a millisecond past the bound", mtime + minute + 1, mtime},
		{"far past the bound", 4_070_908_800_000, mtime},
		{"no mtime", 4_070_908_800_000, 0},
		{"zero", 0, mtime},
	}
	type times struct{ UpdatedAt, NewestAt int64 }
	read := func(t *testing.T, s *Store) times {
		t.Helper()
		var got times
		if err := s.writer.QueryRowContext(t.Context(), `SELECT updated_at, newest_at FROM threads WHERE id = ?`, id).
			Scan(&got.UpdatedAt, &got.NewestAt); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThread(id, mtime-2*minute)
			th.UpdatedAt, th.FileMtime = tt.updatedAt, tt.mtime*ns

			viaTrigger := openTest(t)
			if _, err := viaTrigger.writer.ExecContext(t.Context(),
				`INSERT INTO threads (id, rollout_path, created_at, updated_at, file_mtime) VALUES (?, ?, ?, ?, ?)`,
				th.ID, th.RolloutPath, th.CreatedAt, th.UpdatedAt, th.FileMtime); err != nil {
				t.Fatal(err)
			}
			want := read(t, viaTrigger)

			inserted := openTest(t)
			mustInsert(t, inserted, Record{Thread: th})
			if got := read(t, inserted); got != want {
				t.Errorf("Insert: (updated_at, newest_at) = %v, want %v", got, want)
			}
			replaced := openTest(t)
			if err := replaced.Replace(t.Context(), []Record{{Thread: th}}); err != nil {
				t.Fatal(err)
			}
			if got := read(t, replaced); got != want {
				t.Errorf("Replace: (updated_at, newest_at) = %v, want %v", got, want)
			}
		})
	}
}
