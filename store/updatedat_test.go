package store

import (
	"context"
	"fmt"
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

// TestAdvanceAsTheTriggerDates: Advance computes newest_at and updated_at
// in its own UPDATE, so that the trigger of migration 00005 need not write
// the row a second time; in every case the row must end as that trigger
// alone makes it from the updated time written (the oracle: the same
// write to a twin row through the trigger).
func TestAdvanceAsTheTriggerDates(t *testing.T) {
	const (
		base   = int64(1_800_000_000_000) // ms
		minute = int64(60_000)
		ns     = int64(1_000_000)
	)
	tests := []struct {
		name             string
		updated, newest  int64 // the row before
		written, mtimeMs int64 // the advance: Progress.UpdatedAt and FileMtime (in ms; 0 for none)
	}{
		{"a newer line", base, base, base + 1000, base + 1000},
		{"the same time", base, base, base, base + 5000},
		{"no time: the row's", base, base + 500, 0, base + 500},
		{"between updated and newest", base, base + 10_000, base + 5000, base + 5000},
		{"below updated: a rescan", base, base, base - 1000, base},
		{"in the future: bounded", base, base, base + 10*minute, base},
		{"newest stays, the mtime moved back", base, base + 10*minute, base, base - 5*minute},
		{"newest moves, bounded below the old updated time", base, base, base + 2*minute, base - 5*minute},
		{"no mtime: no bound", base, base, base + 10*minute, 0},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t)
			advanced := fmt.Sprintf("019a0000-0000-7000-8000-%012d", 2*i)
			oracle := fmt.Sprintf("019a0000-0000-7000-8000-%012d", 2*i+1)
			for _, id := range []string{advanced, oracle} {
				mustInsert(t, s, Record{Thread: newThread(id, 1)})
				// newest_at changes, so the update trigger leaves this be.
				if _, err := s.writer.ExecContext(ctx, `UPDATE threads SET newest_at = ?, updated_at = ? WHERE id = ?`,
					tt.newest, tt.updated, id); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Advance(ctx, Progress{ID: advanced, LineCount: 1, IndexedSize: 10, FileSize: 10,
				FileMtime: tt.mtimeMs * ns, UpdatedAt: tt.written}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.writer.ExecContext(ctx, `UPDATE threads SET updated_at = IIF(?1 > 0, ?1, updated_at), file_mtime = ?2 WHERE id = ?3`,
				tt.written, tt.mtimeMs*ns, oracle); err != nil {
				t.Fatal(err)
			}
			dates := func(id string) (updated, newest int64) {
				if err := s.writer.QueryRowContext(ctx, `SELECT updated_at, newest_at FROM threads WHERE id = ?`, id).Scan(&updated, &newest); err != nil {
					t.Fatal(err)
				}
				return updated, newest
			}
			gotU, gotN := dates(advanced)
			wantU, wantN := dates(oracle)
			if gotU != wantU || gotN != wantN {
				t.Errorf("advance dates the row updated %d, newest %d; the trigger alone: %d, %d", gotU-base, gotN-base, wantU-base, wantN-base)
			}
		})
	}
}
