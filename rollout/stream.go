package rollout

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// ReadLine reads one line from r, through its newline (a last line may
// lack one), appended to dst; it returns io.EOF only when no byte was
// left. Unlike bufio.Reader.ReadBytes it reuses dst, so a caller reading
// line after line allocates for the longest line, not for every one.
func ReadLine(dst []byte, r *bufio.Reader) ([]byte, error) {
	start := len(dst)
	for {
		part, err := r.ReadSlice('\n')
		dst = append(dst, part...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(dst) > start:
			return dst, nil
		}
		return dst, err
	}
}

// Renumbered returns a reader of the lines of sources, in order, each
// renumbered (Renumber) first, first+1, first+2, ...: a paginated history
// copied into a file whose lines must count up from first (not negative).
// A line Renumber refuses (blank, not a JSON object, with an ordinal that
// is not a count, ...) is copied as it is and takes no ordinal: Codex
// skips such a line, and spool keeps what it does not understand. Every
// other byte of every line is kept. Each source must end at a line
// boundary; one that ends inside a line (a torn write, not part of a
// thread) ends the reader with an error wrapping io.ErrUnexpectedEOF.
// Lines are read and renumbered one at a time: what the reader holds is
// one line, whatever the sources' sizes. It implements io.WriterTo
// (io.Copy uses it), gathering lines into large writes.
func Renumbered(first int64, sources ...io.Reader) io.Reader {
	return &renumberer{sources: sources, next: first}
}

// renumberBuffer is the read buffer of a renumberer, shared by its
// sources in turn, and the size of the writes its WriteTo gathers.
const renumberBuffer = 256 << 10

type renumberer struct {
	sources []io.Reader   // the sources not yet started
	src     *bufio.Reader // reads the current source; reset to the next
	reading bool          // src reads a source not yet at its end
	next    int64         // the next renumbered line's ordinal
	line    []byte        // the line read, reused
	buf     []byte        // the line renumbered, reused
	out     []byte        // what is left to yield of the current line
	err     error         // what the reader ends with, io.EOF at a clean end
}

// Read implements io.Reader.
func (r *renumberer) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// WriteTo implements io.WriterTo.
func (r *renumberer) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, renumberBuffer)
	var total int64
	for {
		for len(r.out) == 0 {
			if r.err == io.EOF {
				return total, bw.Flush()
			}
			if r.err != nil {
				return total, r.err
			}
			r.fill()
		}
		n, err := bw.Write(r.out)
		r.out = r.out[n:]
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// fill reads the next line into r.out, renumbered if Renumber takes it,
// or sets r.err. It may leave r.out empty (at the end of a source).
func (r *renumberer) fill() {
	if !r.reading {
		if len(r.sources) == 0 {
			r.err = io.EOF
			return
		}
		if r.src == nil {
			r.src = bufio.NewReaderSize(r.sources[0], renumberBuffer)
		} else {
			r.src.Reset(r.sources[0])
		}
		r.sources, r.reading = r.sources[1:], true
	}
	var err error
	r.line, err = ReadLine(r.line[:0], r.src)
	switch {
	case err == io.EOF:
		r.reading = false
		return
	case err != nil:
		r.err = err
		return
	case r.line[len(r.line)-1] != '\n':
		r.err = fmt.Errorf("renumber: history ends inside a line: %w", io.ErrUnexpectedEOF)
		return
	}
	if out, err := Renumber(r.buf[:0], r.line, r.next); err == nil {
		r.buf, r.out = out, out
		r.next++
		return
	}
	r.out = r.line
}

// SelfContained returns a reader of history, the whole history of a thread
// whose own bytes start at baseSize (a reference fork: the bytes before are
// its base's), laid out as a self-contained rollout: first ownMeta (its
// session_meta, without history_base, newline-terminated), then
// ancestorMetas, then the base's bytes, then its own bytes but their first
// line (the meta, moved first). Bytes are streamed from history as they
// are read.
func SelfContained(history io.Reader, baseSize int64, ownMeta, ancestorMetas []byte) io.Reader {
	br := bufio.NewReaderSize(history, 64<<10)
	return io.MultiReader(bytes.NewReader(ownMeta), bytes.NewReader(ancestorMetas),
		&exactReader{r: io.LimitReader(br, baseSize), want: baseSize}, &skipLine{r: br})
}

// exactReader is r, which must yield want bytes: fewer is
// io.ErrUnexpectedEOF.
type exactReader struct {
	r         io.Reader
	want, got int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.got += int64(n)
	if err == io.EOF && e.got < e.want {
		err = fmt.Errorf("history ends at byte %d, before its own bytes at %d: %w", e.got, e.want, io.ErrUnexpectedEOF)
	}
	return n, err
}

// skipLine is r without its first line.
type skipLine struct {
	r       *bufio.Reader
	skipped bool
}

func (s *skipLine) Read(p []byte) (int, error) {
	if !s.skipped {
		for {
			_, err := s.r.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				return 0, fmt.Errorf("own bytes hold no complete line: %w", io.ErrUnexpectedEOF)
			}
			if err != nil {
				return 0, err
			}
			break
		}
		s.skipped = true
	}
	return s.r.Read(p)
}

// CountLines returns how many newlines the readers yield, in order: the
// lines of a history laid out from them, each source ending at a line
// boundary. It reads each in large blocks and holds no line.
func CountLines(sources ...io.Reader) (int64, error) {
	buf := make([]byte, renumberBuffer)
	var n int64
	for _, r := range sources {
		for {
			k, err := r.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
