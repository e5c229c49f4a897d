package manager

import (
	"fmt"
	"testing"
)

// BenchmarkDelete measures a delete of a thread in today's folder, which
// holds the given number of other threads' files besides those deleted:
// each delete first looks for files there that the index does not hold
// (syncRecent), a listing of the folder.
func BenchmarkDelete(b *testing.B) {
	for _, others := range []int{200, 2000} {
		b.Run(fmt.Sprintf("today=%d", others), func(b *testing.B) {
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
	}
}
