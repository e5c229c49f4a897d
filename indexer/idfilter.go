package indexer

import "hash/maphash"

// idFilterWords is the size of an idFilter in 64-bit words: 1 MiB, which
// keeps false positives near 3% after a million ids.
const idFilterWords = 1 << 17

// idFilter is a Bloom filter of fixed size over thread ids: mayHold never
// answers false for an id added, and rarely true for one that was not.
// Sync's writer uses it to skip, for threads it has not written yet, the
// index look-up that would catch a decision made on a row since changed.
type idFilter struct {
	seed maphash.Seed
	bits []uint64
}

func newIDFilter() *idFilter {
	return &idFilter{seed: maphash.MakeSeed(), bits: make([]uint64, idFilterWords)}
}

// positions calls fn with the three bit positions of id (double hashing).
func (f *idFilter) positions(id string, fn func(word int, mask uint64)) {
	h := maphash.String(f.seed, id)
	h1, h2 := h&0xffffffff, h>>32|1
	const bits = idFilterWords * 64
	for i := range uint64(3) {
		bit := (h1 + i*h2) % bits
		fn(int(bit/64), 1<<(bit%64))
	}
}

func (f *idFilter) add(id string) {
	f.positions(id, func(word int, mask uint64) { f.bits[word] |= mask })
}

func (f *idFilter) mayHold(id string) bool {
	held := true
	f.positions(id, func(word int, mask uint64) { held = held && f.bits[word]&mask != 0 })
	return held
}
