package rollout

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineSize is the longest line the Reader accepts. Lines holding base64
// images are megabytes long; anything past this is treated as corrupt.
const MaxLineSize = 256 << 20

// Line is one complete line of a rollout file as the Reader yields it.
type Line struct {
	// Raw holds the line's bytes without its trailing newline. It is only
	// valid until the next call to Next; copy it to keep it.
	Raw []byte
	// Offset is the byte offset of the line's first byte in the file.
	Offset int64
	// Number is the 0-based line number (the count of newlines before Offset).
	Number int64
	// Type is the envelope's "type" ("" when the line is malformed).
	Type string
	// PayloadType is payload.type when present, else "".
	PayloadType string
	// Err is non-nil (a *MalformedLineError) when the line is not a JSON
	// object. Such a line is yielded, kept, and means nothing to a thread.
	Err error

	// role is payload.role, and scanned reports that Type, PayloadType,
	// role and Err were set by the scanner (a Line built by hand is scanned
	// on demand by Classify).
	role     string
	turn     turnIDScan
	payloads int
	depth    int // the deepest nesting of Raw, its own object being 1
	scanned  bool
}

// NewLine returns a Line for raw (without its newline) at the given offset
// and line number, with its envelope fields filled in as the Reader would.
func NewLine(raw []byte, offset, number int64) *Line {
	l := &Line{Raw: raw, Offset: offset, Number: number}
	l.scan()
	return l
}

// scan fills the envelope fields of l from l.Raw.
func (l *Line) scan() {
	res, err := scanLine(l.Raw)
	l.scanned = true
	l.Type, l.PayloadType, l.role, l.turn = res.Type, res.PayloadType, res.Role, res.turn
	l.payloads, l.depth = res.payloads, res.depth
	l.Err = nil
	if err != nil {
		l.Err = &MalformedLineError{Offset: l.Offset, Number: l.Number, Err: err}
	}
}

// PayloadTurnID returns payload.turn_id as encoding/json decodes the line
// into struct{ Payload struct{ TurnID string `json:"turn_id"` } `json:"payload"` }:
// "" when it is absent or null, and the decoding error when there is one
// (a malformed line, a payload or a turn_id of another kind). The scanner
// answers for the lines Codex writes; only odd ones are decoded.
func (l *Line) PayloadTurnID() (string, error) {
	if !l.scanned {
		l.scan()
	}
	if l.Err == nil && l.turn.plain {
		return string(l.Raw[l.turn.start:l.turn.end]), nil
	}
	var tl struct {
		Payload struct {
			TurnID string `json:"turn_id"`
		} `json:"payload"`
	}
	err := json.Unmarshal(l.Raw, &tl)
	return tl.Payload.TurnID, err
}

// PayloadMembers returns how many top-level members of the line
// encoding/json decodes into a field named "payload": those whose name
// equals it under case folding, escaped or not (0 for a malformed line).
// With more than one, a json.RawMessage holds the last, while a struct is
// decoded from each in turn, keeping what a later one lacks.
func (l *Line) PayloadMembers() int {
	if !l.scanned {
		l.scan()
	}
	return l.payloads
}

// End returns the offset just past the line's newline.
func (l *Line) End() int64 { return l.Offset + int64(len(l.Raw)) + 1 }

// Reader yields the complete lines of a rollout stream one at a time,
// without reading the whole stream into memory.
//
// Blank lines (only spaces, tabs or carriage returns) are skipped. A final
// line without its newline is a torn tail: it is not yielded, and Torn
// reports it after Next has returned false.
type Reader struct {
	br      *bufio.Reader
	line    Line
	long    []byte // accumulates lines longer than br's buffer
	maxLine int    // MaxLineSize, lowered by tests

	offset int64 // offset of the next unread byte
	lines  int64 // newlines before offset
	torn   int64 // length of the torn tail, once found
	err    error
	done   bool
}

// readerBufferSize is large enough that nearly every rollout line is
// yielded straight from the bufio buffer, without a copy.
const readerBufferSize = 256 << 10

// minReaderBufferSize is the smallest buffer NewReader gives a sized
// reader.
const minReaderBufferSize = 4 << 10

// keepLongBuffer is the largest long-line buffer a Reader keeps for reuse.
const keepLongBuffer = 16 << 20

// NewReader returns a Reader over r, whose first byte is at byte offset
// startOffset and line number startLine of the file (0, 0 for a whole file;
// an indexed size and line count to catch up from the middle).
//
// When r reports its size (an *io.SectionReader, *bytes.Reader or
// *strings.Reader does), the buffer is no larger than r: a full reindex
// of many small rollouts would otherwise allocate and clear 256 KiB each.
func NewReader(r io.Reader, startOffset, startLine int64) *Reader {
	size := readerBufferSize
	if sized, ok := r.(interface{ Size() int64 }); ok {
		size = int(min(max(sized.Size(), minReaderBufferSize), readerBufferSize))
	}
	return &Reader{
		br:      bufio.NewReaderSize(r, size),
		maxLine: MaxLineSize,
		offset:  startOffset,
		lines:   startLine,
	}
}

// firstLineBuffer is the buffer FirstLine reads with: most meta lines
// (base instructions included) fit in one read.
const firstLineBuffer = 16 << 10

// FirstLine returns the first complete non-blank line of r between byte
// off (a line's start) and end, reading only as far as that line: a
// Reader over the same range would read up to 256 KiB ahead. The line's
// Number counts from off. It returns false with a nil error at a torn tail
// or when the range holds no line.
func FirstLine(r io.ReaderAt, off, end int64) (*Line, bool, error) {
	rd := &Reader{
		br:      bufio.NewReaderSize(io.NewSectionReader(r, off, end-off), firstLineBuffer),
		maxLine: MaxLineSize,
		offset:  off,
	}
	if !rd.Next() {
		return nil, false, rd.Err()
	}
	return rd.Line(), true, nil
}

// Next advances to the next complete line and reports whether there is one.
// It returns false at the end of the stream, at a torn tail, or on an I/O
// error or a line longer than MaxLineSize (see Err).
func (r *Reader) Next() bool {
	for !r.done {
		raw, ok := r.readLine()
		if !ok {
			return false
		}
		offset, number := r.offset, r.lines
		r.offset += int64(len(raw)) + 1
		r.lines++
		if isBlank(raw) {
			continue
		}
		r.line = Line{Raw: raw, Offset: offset, Number: number}
		r.line.scan()
		return true
	}
	return false
}

// readLine returns the next complete line without its newline. At the end
// of the stream, on an error or at a torn tail it sets r.done and returns
// false.
func (r *Reader) readLine() ([]byte, bool) {
	if cap(r.long) > keepLongBuffer {
		r.long = nil // do not pin the memory of one huge line
	}
	r.long = r.long[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == nil {
			if len(r.long) == 0 {
				return chunk[:len(chunk)-1], true
			}
			if !r.grow(len(chunk) - 1) {
				return nil, false
			}
			r.long = append(r.long, chunk[:len(chunk)-1]...)
			return r.long, true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if !r.grow(len(chunk)) {
				return nil, false
			}
			r.long = append(r.long, chunk...)
			continue
		}
		r.done = true
		if err == io.EOF {
			r.torn = int64(len(r.long) + len(chunk))
		} else {
			r.err = fmt.Errorf("read line at offset %d: %w", r.offset, err)
		}
		return nil, false
	}
}

// grow reports whether the current line may take n more bytes, and fails
// the Reader with a *LineTooLongError when it may not.
func (r *Reader) grow(n int) bool {
	if len(r.long)+n > r.maxLine {
		r.done = true
		r.err = &LineTooLongError{Offset: r.offset}
		return false
	}
	return true
}

// isBlank reports whether a line holds only spaces, tabs and carriage
// returns (or nothing).
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// Line returns the current line. The pointer and its Raw bytes are reused
// by the next call to Next.
func (r *Reader) Line() *Line { return &r.line }

// Err returns the first I/O error or *LineTooLongError met, or nil at a clean
// end or a torn tail.
func (r *Reader) Err() error { return r.err }

// End returns the offset just past the last complete line read so far (the
// indexed size of the stream) and the number of lines (blank ones included)
// before it, so a later Reader can resume with NewReader(f, end, lines).
func (r *Reader) End() (offset, lines int64) { return r.offset, r.lines }

// Torn returns the offset and length of a torn tail: the bytes after the
// last newline when the stream did not end with one. It is only meaningful
// after Next returned false with a nil Err; length is 0 when there is none.
func (r *Reader) Torn() (offset, length int64) { return r.offset, r.torn }

// LineTooLongError reports a line longer than MaxLineSize.
type LineTooLongError struct {
	Offset int64
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line at offset %d is longer than the 256 MiB limit", e.Offset)
}
