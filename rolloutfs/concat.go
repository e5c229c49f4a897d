package rolloutfs

import (
	"errors"
	"io"
)

// A Segment is Length bytes of File from Offset: one piece of a history
// that spans files (a reference fork's base, then its own file).
type Segment struct {
	File   ReadFile
	Offset int64
	Length int64
}

// Concat returns a ReadFile whose bytes are the segments' in order. Its
// Size is the sum of their lengths; Close closes every segment's file. A
// Range part of it passed to Create copies each segment in the kernel
// where the system can.
func Concat(segments ...Segment) ReadFile {
	c := &concatFile{segments: segments}
	for _, s := range segments {
		c.size += s.Length
	}
	return c
}

type concatFile struct {
	segments []Segment
	size     int64
}

func (c *concatFile) Size() int64 { return c.size }

// ReadAt reads from the segments that cover [off, off+len(p)).
func (c *concatFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("rolloutfs: negative offset")
	}
	n := 0
	start := int64(0) // position of the current segment in c
	for _, s := range c.segments {
		if len(p) == 0 {
			break
		}
		end := start + s.Length
		if off < end {
			in := off - start // offset within the segment
			k := min(int64(len(p)), s.Length-in)
			m, err := s.File.ReadAt(p[:k], s.Offset+in)
			n += m
			if err != nil && !(errors.Is(err, io.EOF) && int64(m) == k) {
				return n, err
			}
			p, off = p[k:], off+k
		}
		start = end
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

func (c *concatFile) Close() error {
	var errs []error
	for _, s := range c.segments {
		errs = append(errs, s.File.Close())
	}
	return errors.Join(errs...)
}

// ranges returns the parts that make up bytes [off, off+n) of c.
func (c *concatFile) ranges(off, n int64) []Part {
	var parts []Part
	start := int64(0)
	for _, s := range c.segments {
		end := start + s.Length
		if n > 0 && off < end {
			in := off - start
			k := min(n, s.Length-in)
			parts = append(parts, Range(s.File, s.Offset+in, k))
			off, n = off+k, n-k
		}
		start = end
	}
	return parts
}
