package rollout

import "slices"

// Ancestry follows the leading session_meta lines of a fork's file, as a
// copy fork lays them out: its own meta names its parent P1, the next
// line is P1's meta naming P2, and so on. The chain ends at the first line
// that does not continue it: another line, a meta of another thread, one
// naming no parent, or a cycle. The zero value is ready: Start it with the
// file's own meta, then Observe each session_meta line after it, and End
// it at any other line.
type Ancestry struct {
	ended bool
	self  string // the file's own thread
	want  string // the id the next meta must have to continue the chain
	ids   []string
}

// Start begins the chain at a file's own meta; a meta without a parent
// ends it at once.
func (a *Ancestry) Start(own SessionMeta) {
	parent := normalizeID(own.ForkedFromID)
	if parent == "" {
		a.ended = true
		return
	}
	a.self = normalizeID(own.ID)
	if parent == a.self {
		a.ended = true
		return
	}
	a.ids = []string{parent}
	a.want = parent
}

// Observe continues the chain with the meta of the next line, or ends it.
func (a *Ancestry) Observe(m SessionMeta) {
	if a.ended {
		return
	}
	parent := normalizeID(m.ForkedFromID)
	if normalizeID(m.ID) != a.want || parent == "" || parent == a.self || slices.Contains(a.ids, parent) {
		a.ended = true
		return
	}
	a.ids = append(a.ids, parent)
	a.want = parent
}

// End ends the chain: a line that is no session_meta, or does not parse.
func (a *Ancestry) End() { a.ended = true }

// Ended reports whether the chain has ended.
func (a *Ancestry) Ended() bool { return a.ended }

// IDs returns the ancestors the chain names, nearest first.
func (a *Ancestry) IDs() []string { return a.ids }

// normalizeID lower-cases a valid id and keeps anything else as is.
func normalizeID(id string) string {
	if norm, err := ParseID(id); err == nil {
		return norm
	}
	return id
}
