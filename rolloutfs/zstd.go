package rolloutfs

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// MaxZstdWindow is the largest zstd window Decompress accepts (128 MiB,
// the zstd command's own default limit): a frame asking for more fails
// instead of making a reader allocate it. Codex compresses at level 3,
// whose window is at most 2 MiB.
const MaxZstdWindow = 128 << 20

// ErrDamaged is wrapped by the errors of reading a compressed file that
// does not decode (cut short, corrupt): what it held is lost until the
// file is restored.
var ErrDamaged = errors.New("compressed file is damaged")

// NewZstdReader returns a streaming decoder of the zstd stream r (one or
// more frames). It decodes in the caller's goroutine and holds at most one
// window of history; the caller closes it.
func NewZstdReader(r io.Reader) (io.ReadCloser, error) {
	dec, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(MaxZstdWindow),
		zstd.WithDecoderMaxMemory(MaxZstdWindow))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return dec.IOReadCloser(), nil
}

// Decompress returns f, a zstd-compressed file, as the file of its
// decompressed bytes; closing it closes f. A zstd stream cannot seek:
// ReadAt decodes from the start and discards the bytes before its offset,
// except that a read continuing where the previous one ended goes on from
// there, so reading front to back (io.SectionReader, io.Copy) decodes the
// file once. Size decodes the whole file the first time it is called.
// Memory stays bounded by one window (MaxZstdWindow) and a buffer.
//
// ReadAt is safe for concurrent use; concurrent readers at different
// offsets take turns and restart each other's decoding.
func Decompress(f ReadFile) ReadFile { return &zstdFile{src: f, size: -1} }

type zstdFile struct {
	src ReadFile

	mu   sync.Mutex    // guards the fields below
	dec  io.ReadCloser // nil before the first read and after an error
	pos  int64         // decompressed offset dec has reached
	size int64         // decompressed size, -1 until known
}

func (z *zstdFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("zstd read at %d: negative offset", off)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.size >= 0 && off >= z.size {
		return 0, io.EOF
	}
	if z.dec == nil || off < z.pos {
		if err := z.restart(); err != nil {
			return 0, err
		}
	}
	if skip := off - z.pos; skip > 0 {
		n, err := io.CopyN(io.Discard, z.dec, skip)
		z.pos += n
		if err != nil {
			return 0, z.fail(err)
		}
	}
	n := 0
	for n < len(p) {
		m, err := z.dec.Read(p[n:])
		n += m
		z.pos += int64(m)
		if err != nil {
			return n, z.fail(err)
		}
	}
	return n, nil
}

// restart begins decoding from the start of the compressed file.
func (z *zstdFile) restart() error {
	if z.dec != nil {
		z.dec.Close()
		z.dec = nil
	}
	dec, err := NewZstdReader(io.NewSectionReader(z.src, 0, z.src.Size()))
	if err != nil {
		return err
	}
	z.dec, z.pos = dec, 0
	return nil
}

// fail ends the current decoding on err: the clean end of the stream
// (io.EOF, recorded as the size) is returned as io.EOF; anything else, such
// as a truncated or corrupt stream, is an error.
func (z *zstdFile) fail(err error) error {
	z.dec.Close()
	z.dec = nil
	if err == io.EOF {
		z.size = z.pos
		return io.EOF
	}
	return fmt.Errorf("%w: zstd: %w", ErrDamaged, err)
}

// Size returns the decompressed size. It decodes the whole file the first
// time; for a file that does not decode to its end it returns how much
// decoded, and ReadAt past that returns the decoding error.
func (z *zstdFile) Size() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.size >= 0 {
		return z.size
	}
	if z.dec == nil {
		if err := z.restart(); err != nil {
			return 0
		}
	}
	n, err := io.Copy(io.Discard, z.dec)
	z.pos += n
	z.dec.Close()
	z.dec = nil
	if err != nil {
		return z.pos
	}
	z.size = z.pos
	return z.size
}

func (z *zstdFile) Close() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.dec != nil {
		z.dec.Close()
		z.dec = nil
	}
	return z.src.Close()
}
