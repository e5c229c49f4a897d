package rollout

import (
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
	// fields are the implementation's
}

// NewReader returns a Reader over r, whose first byte is at byte offset
// startOffset and line number startLine of the file (0, 0 for a whole file;
// an indexed size and line count to catch up from the middle).
func NewReader(r io.Reader, startOffset, startLine int64) *Reader {
	panic("unimplemented")
}

// Next advances to the next complete line and reports whether there is one.
// It returns false at the end of the stream, at a torn tail, or on an I/O
// error or a line longer than MaxLineSize (see Err).
func (r *Reader) Next() bool { panic("unimplemented") }

// Line returns the current line. The pointer and its Raw bytes are reused
// by the next call to Next.
func (r *Reader) Line() *Line { panic("unimplemented") }

// Err returns the first I/O error or *LineTooLongError met, or nil at a clean
// end or a torn tail.
func (r *Reader) Err() error { panic("unimplemented") }

// End returns the offset just past the last complete line read so far (the
// indexed size of the stream) and the number of lines (blank ones included)
// before it, so a later Reader can resume with NewReader(f, end, lines).
func (r *Reader) End() (offset, lines int64) { panic("unimplemented") }

// Torn returns the offset and length of a torn tail: the bytes after the
// last newline when the stream did not end with one. It is only meaningful
// after Next returned false with a nil Err; length is 0 when there is none.
func (r *Reader) Torn() (offset, length int64) { panic("unimplemented") }

// LineTooLongError reports a line longer than MaxLineSize.
type LineTooLongError struct {
	Offset int64
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line at offset %d is longer than the 256 MiB limit", e.Offset)
}
