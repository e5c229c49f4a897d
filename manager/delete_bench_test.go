package manager

import (
	"fmt"
	"testing"
)

// BenchmarkDelete measures a delete of a thread in today's folder, which
// holds the given number of other threads' files besides those deleted
// ("delete"), and, in the same run, the part of it that looks for files
// there that the index does not hold ("look": syncRecent as a delete
// finds the folder, changed by the delete before it, every name known).
// look/delete is the share of a delete the look costs.
func BenchmarkDelete(b *testing.B) {
	for _, others := range []int{200, 2000} {
		b.Run(fmt.Sprintf("today=%d/delete", others), func(b *testing.B) {
			m := openTest(b)
			ids := make([]string, 0, others+b.N)
			for range others + b.N {
				ids = append(ids, start(b, m, user("hello"), assistant("hi")).ID)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := m.Delete(b.Context(), ids[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("today=%d/look", others), func(b *testing.B) {
			m := openTest(b)
			for range others {
				start(b, m, user("hello"), assistant("hi"))
			}
			if err := m.syncRecent(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				m.recent.mu.Lock()
				for dir, d := range m.recent.dirs {
					d.mtime = 0 // as after a change to the folder
					m.recent.dirs[dir] = d
				}
				m.recent.mu.Unlock()
				b.StartTimer()
				if err := m.syncRecent(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
