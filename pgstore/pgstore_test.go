//go:build distributed

package pgstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"

	"github.com/spoolhq/spool/pgstore/migrations"
)

// history reads thread id's whole history.
func history(t *testing.T, s *Store, id string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := s.WriteHistory(t.Context(), &b, id, 0); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestConcurrentAppendsAcrossStores appends to one thread from three Stores
// (three processes' worth of pools) at once: offsets are contiguous, and the
// history holds every acknowledged line at the offset it was given.
func TestConcurrentAppendsAcrossStores(t *testing.T) {
	dsn := testDSN(t)
	nodes := []*Store{openStore(t, dsn, nil), openStore(t, dsn, nil), openStore(t, dsn, nil)}
	id := newID(t)
	if _, err := nodes[0].Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	const writers, appends = 4, 25 // per node
	type ack struct {
		offset int64
		line   []byte
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for n, s := range nodes {
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					line := userLine(fmt.Sprintf("node %d writer %d append %d", n, w, i))
					res, err := s.Append(t.Context(), id, line, -1)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acks = append(acks, ack{res.Offset, line})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(acks, func(a, b ack) int { return int(a.offset - b.offset) })
	h := history(t, nodes[1], id)
	next := int64(len(metaLine(id)))
	for _, a := range acks {
		if a.offset != next {
			t.Fatalf("append at %d, want the next contiguous offset %d", a.offset, next)
		}
		if got := h[a.offset : a.offset+int64(len(a.line))]; !bytes.Equal(got, a.line) {
			t.Fatalf("history at %d holds %q, acknowledged %q", a.offset, got, a.line)
		}
		next += int64(len(a.line))
	}
	if int64(len(h)) != next {
		t.Fatalf("history has %d bytes, acknowledged appends end at %d", len(h), next)
	}
	th, err := nodes[2].Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(nodes) * writers * appends; th.UserMessageCount != want {
		t.Fatalf("%d user messages, want %d", th.UserMessageCount, want)
	}
}

// TestRefusedAppendsWriteNothing: a size mismatch and invalid lines leave
// the thread as it was.
func TestRefusedAppendsWriteNothing(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	id := newID(t)
	th, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)})
	if err != nil {
		t.Fatal(err)
	}
	before := history(t, s, id)
	cases := []struct {
		name     string
		lines    []byte
		expected int64
		want     error
	}{
		{"stale expected size", userLine("x"), th.HistorySize() - 1, ErrSizeMismatch},
		{"no final newline", []byte(`{"type":"event_msg"}`), -1, ErrInvalidLines},
		{"not JSON", []byte("{oops\n"), -1, ErrInvalidLines},
		{"second line bad", append(userLine("a"), "[]\n"...), -1, ErrInvalidLines},
		{"empty line", append(userLine("a"), '\n'), -1, ErrInvalidLines},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), id, tc.lines, tc.expected)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := history(t, s, id); !bytes.Equal(got, before) {
				t.Fatalf("history changed to %q", got)
			}
		})
	}
	if _, err := s.Append(t.Context(), newID(t), userLine("x"), -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("append to a missing thread: got %v, want ErrNotFound", err)
	}
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
}

// parentWith creates a thread with n user messages, each followed by an
// answer.
func parentWith(t *testing.T, s *Store, n int) (string, []byte) {
	t.Helper()
	id := newID(t)
	if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Append(t.Context(), id, slices.Concat(userLine(fmt.Sprintf("prompt %d", i)), echoLine(fmt.Sprintf("prompt %d", i)), otherLine(i)), -1); err != nil {
			t.Fatal(err)
		}
	}
	return id, history(t, s, id)
}

// TestForkIsAReference: a fork copies no bytes and no message rows, reads
// as the parent's history up to the cut and then its own lines, and a fork
// of a fork of a fork reads the same as cutting the original directly.
func TestForkIsAReference(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	parent, ph := parentWith(t, s, 6)
	// Three generations, each cutting before a later message of the same
	// original history, then a last one before message 2.
	ids := []string{parent}
	for gen, before := range []int{5, 4, 2} {
		child := newID(t)
		th, err := s.Fork(t.Context(), Fork{ParentID: ids[len(ids)-1], ChildID: child, BeforeUserMessage: before, Lines: metaLine(child)})
		if err != nil {
			t.Fatal(err)
		}
		if th.BaseID != parent {
			t.Fatalf("generation %d: base %s, want the thread holding the cut, %s", gen, th.BaseID, parent)
		}
		var own int
		if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM user_messages WHERE thread_id = $1`, child).Scan(&own); err != nil {
			t.Fatal(err)
		}
		if own != 0 || th.UserMessageCount != before || th.Preview != "prompt 0" {
			t.Fatalf("generation %d: %d own rows, %d messages, preview %q; want 0, %d, prompt 0", gen, own, th.UserMessageCount, th.Preview, before)
		}
		m, err := s.UserMessage(t.Context(), parent, before)
		if err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(ph[:m.Offset]), metaLine(child)...)
		if got := history(t, s, child); !bytes.Equal(got, want) {
			t.Fatalf("generation %d reads %d bytes, want the parent's %d bytes before message %d and its meta", gen, len(got), m.Offset, before)
		}
		ids = append(ids, child)
	}
	// The fork's own appends follow its meta; its inherited messages
	// resolve through the base, its own are its rows.
	last := ids[len(ids)-1]
	res, err := s.Append(t.Context(), last, userLine("own prompt"), -1)
	if err != nil {
		t.Fatal(err)
	}
	m0, err := s.UserMessage(t.Context(), last, 0)
	if err != nil || m0.Text != "prompt 0" {
		t.Fatalf("inherited message 0: %+v, %v", m0, err)
	}
	m2, err := s.UserMessage(t.Context(), last, 2)
	if err != nil || m2.Text != "own prompt" || m2.Offset != res.Offset {
		t.Fatalf("own message 2: %+v, %v; want at %d", m2, err, res.Offset)
	}
	// A fork cut inside a fork's own bytes has that fork as base.
	grand := newID(t)
	th, err := s.Fork(t.Context(), Fork{ParentID: last, ChildID: grand, BeforeUserMessage: -1, Lines: metaLine(grand)})
	if err != nil {
		t.Fatal(err)
	}
	if th.BaseID != last || th.UserMessageCount != 3 {
		t.Fatalf("whole fork: base %s, %d messages; want %s, 3", th.BaseID, th.UserMessageCount, last)
	}
	if got, want := history(t, s, grand), append(history(t, s, last), metaLine(grand)...); !bytes.Equal(got, want) {
		t.Fatalf("whole fork of a fork reads %q, want %q", got, want)
	}
	// Reading from a position inside the first base of the chain.
	m1, err := s.UserMessage(t.Context(), grand, 1)
	if err != nil {
		t.Fatal(err)
	}
	from := m1.Offset + 3
	var b bytes.Buffer
	if _, err := s.WriteHistory(t.Context(), &b, grand, from); err != nil {
		t.Fatal(err)
	}
	if full := history(t, s, grand); !bytes.Equal(b.Bytes(), full[from:]) {
		t.Fatalf("read from %d differs from the tail of the whole history", from)
	}
	if err := s.Delete(t.Context(), parent); !errors.Is(err, ErrReferenced) {
		t.Fatalf("delete of a base: got %v, want ErrReferenced", err)
	}
	if err := s.Delete(t.Context(), grand); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), grand); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestListPagesByKeyset: pages are newest first, disjoint and complete.
func TestListPagesByKeyset(t *testing.T) {
	s := openStore(t, testDSN(t), nil)
	var ids []string
	for range 7 {
		id := newID(t)
		if _, err := s.Create(t.Context(), NewThread{ID: id, Lines: metaLine(id)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var got []string
	var after *Thread
	for {
		page, err := s.List(t.Context(), ListOptions{Limit: 3, After: after, Archived: new(false)})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for i, th := range page {
			got = append(got, th.ID)
			if i > 0 && (th.UpdatedAt.After(page[i-1].UpdatedAt) || th.UpdatedAt.Equal(page[i-1].UpdatedAt) && th.ID > page[i-1].ID) {
				t.Fatalf("page out of order at %s", th.ID)
			}
		}
		after = &page[len(page)-1]
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %v, want %v", got, ids)
	}
}

// TestConcurrentOpensMigrateOnce: three processes' Opens on a new database
// apply the schema once and all succeed.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := testDSN(t)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	s := openStore(t, dsn, nil)
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var rows, versions int
	if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT version_id)
		FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(files) || versions != len(files) {
		t.Fatalf("%d rows for %d versions recorded, want each of the %d migrations once", rows, versions, len(files))
	}
}
