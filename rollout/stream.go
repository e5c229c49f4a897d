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

// Renumbered returns a reader of r's lines each renumbered (Renumber) 0, 1,
// 2, ... in order, read and written one line at a time: what it holds is
// one line, whatever r's size. A line Renumber refuses ends it with that
// error, naming the line.
func Renumbered(r io.Reader) io.Reader {
	return &renumberer{src: bufio.NewReaderSize(r, 64<<10)}
}

type renumberer struct {
	src  *bufio.Reader
	n    int64  // the next line's ordinal
	line []byte // the line read
	out  []byte // the line renumbered; out[pos:] is still to return
	pos  int
	err  error // the error the reader ends with
}

func (r *renumberer) Read(p []byte) (int, error) {
	for r.pos == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		var err error
		if r.line, err = ReadLine(r.line[:0], r.src); err != nil {
			r.err = err
			continue
		}
		if r.out, err = Renumber(r.out[:0], r.line, r.n); err != nil {
			r.out, r.err = r.out[:0], fmt.Errorf("line %d: %w", r.n, err)
		}
		r.pos = 0
		r.n++
	}
	n := copy(p, r.out[r.pos:])
	r.pos += n
	return n, nil
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
