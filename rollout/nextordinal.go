package rollout

import "bytes"

// Codex 0.169 has no thread_name_updated event (spool's rename, or the name
// spool gives at a start or fork): it skips such a line, and numbers the
// next line it writes after the last line it read. When a paginated file
// ends in such events, Codex's next line repeats the first one's ordinal,
// and its own fork at the file's end names that ordinal as
// end_ordinal_exclusive (docs/CODEX.md, "Forks, reverts, segments").

// MaxNameLine bounds the length of a thread_name_updated line: a name of
// at most 1 KiB, every byte of it escaped, and the line's other members.
const MaxNameLine = 8 << 10

// NextOrdinalAtEnd returns what NextOrdinalAfterNames says of a history
// of size bytes whose next ordinal is next, reading its end through tail
// (tail(lo) returns the bytes from position lo to the end): its last
// 4 KiB, and further back only while every line read is a name update,
// up to its last MiB. Both backends name the end of a fork or revert at a
// history's end with it.
func NextOrdinalAtEnd(size, next int64, tail func(lo int64) ([]byte, error)) (int64, error) {
	for window := int64(4 << 10); ; window *= 4 {
		lo := max(size-window, 0)
		b, err := tail(lo)
		if err != nil {
			return 0, err
		}
		ordinal, more := NextOrdinalAfterNames(b, next, lo > 0)
		if !more || window >= 1<<20 {
			return ordinal, nil
		}
	}
}

// NextOrdinalAfterNames returns the ordinal Codex numbers the line after
// tail with: tail is the end of a paginated history whose next ordinal is
// next, and starts inside a line when partial. When tail ends in
// thread_name_updated events, that is the ordinal of the first of them.
// more reports that every line starting in tail is such an event and the
// line tail starts inside could be one too: a caller that wants the
// answer for the whole history then looks at more of it.
func NextOrdinalAfterNames(tail []byte, next int64, partial bool) (ordinal int64, more bool) {
	lines := bytes.Split(bytes.TrimSuffix(tail, []byte{'\n'}), []byte{'\n'})
	first := 0
	if partial {
		first = 1
	}
	for i := len(lines) - 1; i >= first; i-- {
		if Classify(NewLine(lines[i], 0, 0)).Kind != KindNameUpdate {
			return next, false
		}
		n, ok, err := LineOrdinal(lines[i])
		if err != nil || !ok {
			return next, false
		}
		next = n
	}
	return next, partial && len(lines[0]) < MaxNameLine
}
