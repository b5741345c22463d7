package checkpoint

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"
)

// maxPrealloc is the largest number of float32 values Read allocates for a
// tensor before seeing its data, unless it knows that the input is large
// enough to hold the whole tensor. Larger tensors grow as data arrives, so a
// short file whose header claims a tensor of MaxElements (1 GiB) costs about
// as much memory as the file actually holds, not 1 GiB.
const maxPrealloc = 1 << 16

// Read decodes a checkpoint from r, which must contain exactly one
// checkpoint: on success Read has consumed r to EOF, and it rejects bytes
// after the checksum.
//
// Every length is checked against the format's limits before anything is
// allocated for it. Errors wrap ErrBadMagic, ErrVersion, ErrTruncated,
// ErrTooBig, ErrMalformed or ErrChecksum, or else the error returned by r.
// Because the checksum is at the end, a structural problem caused by
// corruption may be reported as ErrTooBig, ErrMalformed or ErrTruncated
// rather than ErrChecksum.
//
// The returned File and its slices are newly allocated and never alias
// Read's internal buffers or the input. An empty spec or meta is returned as nil.
func Read(r io.Reader) (*File, error) {
	// Readers over memory (bytes.Reader, bytes.Buffer, strings.Reader)
	// know their size, which lets Read allocate each tensor exactly once.
	size := int64(-1)
	if l, ok := r.(interface{ Len() int }); ok {
		size = int64(l.Len())
	}
	return read(r, size)
}

// read is Read with a hint of the input's size in bytes, or -1 if unknown.
// The hint only decides how much to allocate up front; a wrong hint costs
// memory or speed but does not change the result.
func read(r io.Reader, size int64) (*File, error) {
	d := decoder{r: bufio.NewReader(r), avail: size}

	if err := d.magic(); err != nil {
		return nil, err
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(supportedVersions, version) {
		return nil, fmt.Errorf("%w: file has version %d, supported versions: %s",
			ErrVersion, version, versionList())
	}

	f := new(File)
	if f.Spec, err = d.blob("spec"); err != nil {
		return nil, err
	}
	if f.Meta, err = d.blob("meta"); err != nil {
		return nil, err
	}
	count, err := d.u32("tensor count")
	if err != nil {
		return nil, err
	}
	if count > MaxTensors {
		return nil, fmt.Errorf("%w: %d tensors, limit %d", ErrTooBig, count, MaxTensors)
	}
	if count > 0 {
		// Grow the slice as tensors arrive rather than trusting count,
		// for the same reason as maxPrealloc.
		f.Tensors = make([]Tensor, 0, min(count, 64))
	}
	seen := make(map[string]struct{}, min(count, 64))
	for i := range int(count) {
		t, err := d.tensor(i, seen)
		if err != nil {
			return nil, err
		}
		f.Tensors = append(f.Tensors, t)
	}

	// The stored checksum is not part of what it covers, so read it
	// without updating d.crc.
	computed := d.crc
	var sum [4]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return nil, d.fail("checksum", err)
	}
	if stored := binary.LittleEndian.Uint32(sum[:]); stored != computed {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, stored, computed)
	}
	// Trailing bytes would be ignored by a reader that stops at the
	// checksum; reject them so that a file has exactly one valid reading
	// (and concatenated or partly overwritten files are noticed).
	switch _, err := d.r.ReadByte(); {
	case err == nil:
		return nil, fmt.Errorf("%w: trailing bytes after checksum", ErrMalformed)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("checkpoint: reading after checksum: %w", err)
	}
	return f, nil
}

// versionList formats supportedVersions for error messages, e.g. "1" or
// "1, 2".
func versionList() string {
	s := make([]string, len(supportedVersions))
	for i, v := range supportedVersions {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// decoder reads little-endian fields while keeping a running CRC-32C of
// every byte read. buf and chunk are scratch space; nothing returned to the
// caller points into them.
type decoder struct {
	r   *bufio.Reader
	crc uint32
	// buf holds the magic, integer fields, dims and names; MaxNameLen
	// bytes is enough for all of them.
	buf [MaxNameLen]byte
	// chunk holds float data on its way to a tensor. It is allocated on
	// first use and sized to the data, so that reading a small or broken
	// file stays cheap.
	chunk []byte
	// avail is the number of input bytes not yet read, if the input's size
	// is known, or negative. It is only an allocation hint.
	avail int64
}

// fail turns a read error into the package's error for the part being
// read. Running out of input anywhere is ErrTruncated, whether or not the
// part had started (io.EOF vs io.ErrUnexpectedEOF), because an empty part
// is still a missing part.
func (d *decoder) fail(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: reading %s: %w", ErrTruncated, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("checkpoint: reading %s: %w", what, err)
}

// full fills p from the input and adds it to the checksum.
func (d *decoder) full(p []byte, what string) error {
	n, err := io.ReadFull(d.r, p)
	d.crc = crc32.Update(d.crc, castagnoli, p[:n])
	d.avail -= int64(n)
	if err != nil {
		return d.fail(what, err)
	}
	return nil
}

// magic checks the file signature. Input shorter than the magic is
// reported as ErrBadMagic unless it is a prefix of the magic, so that a
// short unrelated file is not misreported as a truncated checkpoint.
func (d *decoder) magic() error {
	p := d.buf[:len(Magic)]
	n, err := io.ReadFull(d.r, p)
	d.crc = crc32.Update(d.crc, castagnoli, p[:n])
	if !strings.HasPrefix(Magic, string(p[:n])) {
		return fmt.Errorf("%w: file starts with %q", ErrBadMagic, p[:n])
	}
	if err != nil {
		return d.fail("magic", err)
	}
	return nil
}

func (d *decoder) u8(what string) (uint8, error) {
	p := d.buf[:1]
	if err := d.full(p, what); err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) u16(what string) (uint16, error) {
	p := d.buf[:2]
	if err := d.full(p, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(p), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	p := d.buf[:4]
	if err := d.full(p, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

// blob reads a uint32 length and that many bytes, returning nil for an
// empty blob.
func (d *decoder) blob(what string) ([]byte, error) {
	n, err := d.u32(what + " length")
	if err != nil {
		return nil, err
	}
	if n > MaxBlobLen {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooBig, what, n, MaxBlobLen)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if err := d.full(b, what); err != nil {
		return nil, err
	}
	return b, nil
}

// tensor reads the i'th tensor record, checking its name against seen.
func (d *decoder) tensor(i int, seen map[string]struct{}) (Tensor, error) {
	what := fmt.Sprintf("tensor %d", i)
	nameLen, err := d.u16(what + " name length")
	if err != nil {
		return Tensor{}, err
	}
	if nameLen > MaxNameLen {
		return Tensor{}, fmt.Errorf("%w: %s: name is %d bytes, limit %d", ErrTooBig, what, nameLen, MaxNameLen)
	}
	p := d.buf[:nameLen]
	if err := d.full(p, what+" name"); err != nil {
		return Tensor{}, err
	}
	name := string(p) // copies, so the name does not alias d.buf
	if err := checkName(what, name, seen); err != nil {
		return Tensor{}, err
	}
	what = fmt.Sprintf("tensor %d (%q)", i, name)

	ndim, err := d.u8(what + " ndim")
	if err != nil {
		return Tensor{}, err
	}
	if ndim == 0 {
		return Tensor{}, fmt.Errorf("%w: %s: no dimensions", ErrMalformed, what)
	}
	if ndim > MaxDims {
		return Tensor{}, fmt.Errorf("%w: %s: %d dimensions, limit %d", ErrTooBig, what, ndim, MaxDims)
	}
	p = d.buf[:4*int(ndim)]
	if err := d.full(p, what+" dims"); err != nil {
		return Tensor{}, err
	}
	shape := make([]int, ndim)
	for j := range shape {
		dim := binary.LittleEndian.Uint32(p[4*j:])
		// Bound each dimension before converting to int: on 32-bit
		// platforms a uint32 above MaxInt32 would turn negative.
		if dim > MaxElements {
			return Tensor{}, fmt.Errorf("%w: %s: dimension %d exceeds %d elements", ErrTooBig, what, dim, MaxElements)
		}
		shape[j] = int(dim)
	}
	n, err := numElements(what, shape)
	if err != nil {
		return Tensor{}, err
	}
	data, err := d.floats(n, what+" data")
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Name: name, Shape: shape, Data: data}, nil
}

// floats reads n float32 values a chunk at a time: one io.ReadFull into
// the scratch buffer, then a conversion loop, instead of one binary.Read
// per value.
func (d *decoder) floats(n int, what string) ([]float32, error) {
	// Trust n for the allocation only if the input is known to hold that
	// much data; otherwise commit memory as data actually arrives.
	capacity := min(n, maxPrealloc)
	if d.avail >= 4*int64(n) {
		capacity = n
	}
	data := make([]float32, 0, capacity)
	if want := min(4*n, chunkBytes); len(d.chunk) < want {
		d.chunk = make([]byte, want)
	}
	per := len(d.chunk) / 4
	for len(data) < n {
		k := min(n-len(data), per)
		p := d.chunk[:4*k]
		if err := d.full(p, what); err != nil {
			return nil, err
		}
		start := len(data)
		if start+k > cap(data) {
			// Double, rather than rely on append, whose growth factor
			// falls towards 1.25 for large slices and would copy a big
			// tensor many times.
			grown := make([]float32, start, min(n, max(2*cap(data), start+k)))
			copy(grown, data)
			data = grown
		}
		data = data[:start+k]
		dst := data[start:]
		for j := range dst {
			dst[j] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*j:]))
		}
	}
	return data, nil
}
