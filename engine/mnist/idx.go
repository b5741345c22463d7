package mnist

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// IDX magic numbers. The high two bytes are always zero, the third byte is
// the element type (0x08 = unsigned byte) and the fourth is the number of
// dimensions.
const (
	// MagicLabels is the IDX magic number of a label file: 1-D unsigned bytes.
	MagicLabels = 0x00000801
	// MagicImages is the IDX magic number of an image file: 3-D unsigned bytes.
	MagicImages = 0x00000803
)

// Limits applied to IDX headers before anything is allocated, so that a
// corrupt or hostile header cannot make the reader ask for gigabytes.
// They are generous: full MNIST is 60000 images of 28x28 (47 MB), and
// EMNIST-sized sets still fit.
const (
	// MaxCount is the largest number of images or labels accepted in one file.
	MaxCount = 1 << 20
	// MaxDim is the largest number of rows or columns accepted per image.
	MaxDim = 1024
	// MaxImageBytes is the largest total size of image data (n*rows*cols)
	// accepted in one file.
	MaxImageBytes = 1 << 30
)

// allocChunk caps how much is allocated up front on the word of a header
// alone. Larger bodies grow as bytes actually arrive, so a 16-byte file that
// claims 800 MB fails with ErrTruncated after allocating at most this much.
// 64 MiB still holds full MNIST (47 MB) in a single allocation.
const allocChunk = 64 << 20

// Sentinel errors returned (wrapped) by the readers and writers; match them
// with errors.Is.
var (
	// ErrBadMagic means the stream does not start with the expected IDX magic
	// number, e.g. a label file was passed where images were expected.
	ErrBadMagic = errors.New("mnist: bad magic number")
	// ErrBadHeader means the IDX header holds impossible counts or
	// dimensions, or, when writing, that they do not describe the data.
	ErrBadHeader = errors.New("mnist: invalid idx header")
	// ErrTruncated means the stream ended before the header or the data it
	// announces was complete.
	ErrTruncated = errors.New("mnist: truncated input")
	// ErrCorruptGzip means the input looked like gzip (it starts with 0x1f
	// 0x8b) but could not be decompressed or failed its checksum.
	ErrCorruptGzip = errors.New("mnist: corrupt gzip stream")
)

// gzipMagic is the two-byte signature every gzip member starts with. No valid
// IDX file can start with it, because IDX magic numbers begin with 0x00 0x00.
var gzipMagic = [2]byte{0x1f, 0x8b}

// ReadImages reads an IDX image file (magic 0x00000803) from r, which may be
// raw or gzip-compressed; gzip is recognised by its magic bytes, not by a
// file name. It returns the pixels of all n images, row-major, one image
// after another (n*rows*cols bytes).
//
// Bytes after the n*rows*cols pixels are ignored, since the header alone
// determines the payload; so are bytes after the last gzip member. For gzip
// input the rest of the gzip stream is still read so that its CRC-32 is
// verified: otherwise a corrupted archive whose deflate data happened to stay
// decodable would go unnoticed. Concatenated gzip members are read as one
// stream, as gzip(1) does. Reads are buffered, so r may be consumed beyond
// the end of the IDX data.
func ReadImages(r io.Reader) (images []uint8, n, rows, cols int, err error) {
	src, finish, err := decompress(r)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := readMagic(src, MagicImages); err != nil {
		return nil, 0, 0, 0, err
	}
	var hdr [12]byte
	if err := readFull(src, hdr[:], "image header counts"); err != nil {
		return nil, 0, 0, 0, err
	}
	n64 := int64(binary.BigEndian.Uint32(hdr[0:4]))
	rows64 := int64(binary.BigEndian.Uint32(hdr[4:8]))
	cols64 := int64(binary.BigEndian.Uint32(hdr[8:12]))
	// All checks happen here, before the body is allocated. The product is
	// computed in int64 so that it cannot overflow even on 32-bit platforms.
	if err := checkImageDims(n64, rows64, cols64); err != nil {
		return nil, 0, 0, 0, err
	}
	n, rows, cols = int(n64), int(rows64), int(cols64)
	images, err = readBody(src, n*rows*cols, "image data")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if err := finish(); err != nil {
		return nil, 0, 0, 0, err
	}
	return images, n, rows, cols, nil
}

// ReadLabels reads an IDX label file (magic 0x00000801) from r, raw or
// gzip-compressed, and returns its labels. It does not check their values:
// IDX labels may be any byte, and Load enforces the MNIST range 0..9.
// Trailing bytes are handled as in ReadImages.
func ReadLabels(r io.Reader) ([]uint8, error) {
	src, finish, err := decompress(r)
	if err != nil {
		return nil, err
	}
	if err := readMagic(src, MagicLabels); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if err := readFull(src, hdr[:], "label header count"); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n > MaxCount {
		return nil, fmt.Errorf("%w: %d labels exceeds the limit of %d", ErrBadHeader, n, MaxCount)
	}
	labels, err := readBody(src, int(n), "label data")
	if err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return labels, nil
}

// WriteImages writes n images of rows x cols pixels as a raw (uncompressed)
// IDX image file. Callers wanting gzip wrap w in a gzip.Writer. The same
// limits as ReadImages apply, so anything written can be read back.
func WriteImages(w io.Writer, images []uint8, n, rows, cols int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative image count %d", ErrBadHeader, n)
	}
	if err := checkImageDims(int64(n), int64(rows), int64(cols)); err != nil {
		return err
	}
	if want := n * rows * cols; len(images) != want {
		return fmt.Errorf("%w: %d images of %dx%d need %d bytes, got %d",
			ErrBadHeader, n, rows, cols, want, len(images))
	}
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[0:4], MagicImages)
	binary.BigEndian.PutUint32(hdr[4:8], uint32(n))
	binary.BigEndian.PutUint32(hdr[8:12], uint32(rows))
	binary.BigEndian.PutUint32(hdr[12:16], uint32(cols))
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("mnist: write image header: %w", err)
	}
	if _, err := w.Write(images); err != nil {
		return fmt.Errorf("mnist: write image data: %w", err)
	}
	return nil
}

// WriteLabels writes labels as a raw (uncompressed) IDX label file. Values
// are written as given; see ReadLabels.
func WriteLabels(w io.Writer, labels []uint8) error {
	if len(labels) > MaxCount {
		return fmt.Errorf("%w: %d labels exceeds the limit of %d", ErrBadHeader, len(labels), MaxCount)
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[0:4], MagicLabels)
	binary.BigEndian.PutUint32(hdr[4:8], uint32(len(labels)))
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("mnist: write label header: %w", err)
	}
	if _, err := w.Write(labels); err != nil {
		return fmt.Errorf("mnist: write label data: %w", err)
	}
	return nil
}

// checkImageDims rejects image headers that cannot describe a sensible file.
func checkImageDims(n, rows, cols int64) error {
	switch {
	case n > MaxCount:
		return fmt.Errorf("%w: %d images exceeds the limit of %d", ErrBadHeader, n, MaxCount)
	case rows < 1 || rows > MaxDim || cols < 1 || cols > MaxDim:
		return fmt.Errorf("%w: image size %dx%d, want rows and cols in 1..%d", ErrBadHeader, rows, cols, MaxDim)
	case n*rows*cols > MaxImageBytes:
		return fmt.Errorf("%w: %d images of %dx%d is %d bytes, above the limit of %d",
			ErrBadHeader, n, rows, cols, n*rows*cols, MaxImageBytes)
	}
	return nil
}

// decompress returns a reader of the IDX bytes in r, unwrapping gzip when r
// starts with the gzip magic. The returned finish function must be called
// after the payload has been read; for gzip it drains the stream so the
// checksum in the gzip trailer is verified.
func decompress(r io.Reader) (io.Reader, func() error, error) {
	br := bufio.NewReader(r)
	noop := func() error { return nil }
	// A short or failed Peek just means "not gzip"; the IDX header read that
	// follows reports the truncation with a better message.
	if magic, _ := br.Peek(2); len(magic) < 2 || [2]byte(magic) != gzipMagic {
		return br, noop, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, gzipError(err, "gzip header")
	}
	gr := &gzipMembers{br: br, zr: zr}
	zr.Multistream(false)
	finish := func() error {
		// Whatever remains of the decompressed stream is ignored, but it
		// has to pass through the decompressor to reach the CRC-32.
		if _, err := io.Copy(io.Discard, gr); err != nil {
			return gzipError(err, "gzip stream")
		}
		return nil
	}
	return gr, finish, nil
}

// gzipMembers reads a gzip file member by member. Like gzip's own multistream
// mode it continues into a following member, but only if one starts right
// there: other bytes after a member are ignored, just as bytes after the
// payload of a raw IDX file are, rather than being reported as a bad header.
type gzipMembers struct {
	br *bufio.Reader
	zr *gzip.Reader
}

// Read implements io.Reader.
func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if next, _ := g.br.Peek(2); len(next) < 2 || [2]byte(next) != gzipMagic {
			return n, io.EOF
		}
		if err := g.zr.Reset(g.br); err != nil {
			return n, err
		}
		g.zr.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

// gzipError classifies an error from the gzip layer outside a counted read.
func gzipError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s ends early", ErrTruncated, what)
	}
	return corruptOr(err, what)
}

// corruptOr wraps decompression failures in ErrCorruptGzip and leaves other
// errors (from the underlying reader, say) as plain read errors.
func corruptOr(err error, what string) error {
	var corrupt flate.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("%w: %s: %w", ErrCorruptGzip, what, err)
	}
	return fmt.Errorf("mnist: read %s: %w", what, err)
}

// readMagic reads the 4-byte magic number and checks it against want. It is
// read on its own, before the rest of the header, so that a file of the wrong
// kind is reported as such even when it is shorter than the header we expect.
func readMagic(r io.Reader, want uint32) error {
	var b [4]byte
	if err := readFull(r, b[:], "magic number"); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(b[:]); got != want {
		return fmt.Errorf("%w: found 0x%08x (%s), expected 0x%08x (%s)",
			ErrBadMagic, got, magicName(got), want, magicName(want))
	}
	return nil
}

// magicName describes a magic number for error messages.
func magicName(m uint32) string {
	switch m {
	case MagicImages:
		return "idx images"
	case MagicLabels:
		return "idx labels"
	}
	if m>>16 == 0 {
		return fmt.Sprintf("idx type 0x%02x with %d dimensions, not supported", m>>8&0xff, m&0xff)
	}
	return "not an idx file"
}

// readFull fills buf from r, turning a short read into ErrTruncated (or a
// gzip error) that says how many bytes were expected.
func readFull(r io.Reader, buf []byte, what string) error {
	n, err := io.ReadFull(r, buf)
	if err != nil {
		return readError(err, what, len(buf), n)
	}
	return nil
}

// readBody reads exactly size bytes. It allocates at most allocChunk up
// front and grows only as data arrives, because size comes from a header
// that has not yet been proven by the data behind it.
func readBody(r io.Reader, size int, what string) ([]byte, error) {
	buf := make([]byte, 0, min(size, allocChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			// Double, but never beyond what the header announced.
			buf = slices.Grow(buf, min(size-len(buf), len(buf)))
		}
		chunk := buf[len(buf):min(cap(buf), size)]
		n, err := io.ReadFull(r, chunk)
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, readError(err, what, size, len(buf))
		}
	}
	return buf, nil
}

// readError maps an error from io.ReadFull to the package's sentinels.
func readError(err error, what string, want, got int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: expected %d bytes, got %d", ErrTruncated, what, want, got)
	}
	return corruptOr(err, what)
}
