package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// idx builds an IDX stream from a magic number, header counts and a body.
func idx(magic uint32, counts []uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, c := range counts {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	return append(b, body...)
}

// gz compresses b into a single gzip member.
func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomBytes returns n bytes from a fixed seed, so failures reproduce.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// edit returns a copy of b changed by f, leaving the original intact.
func edit(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

// maxAlloc bounds what a rejected input may make the reader allocate; huge
// header counts must be refused (or not trusted) long before gigabytes.
const maxAlloc = 128 << 20

// allocated runs f and returns how many bytes it allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadImagesMalformed(t *testing.T) {
	const n, rows, cols = 3, 28, 28
	body := randomBytes(n*rows*cols, 1)
	valid := idx(MagicImages, []uint32{n, rows, cols}, body)
	validGz := gz(t, valid)

	tests := []struct {
		name    string
		in      []byte
		wantErr error
		wantMsg string // substring of the error message
	}{
		{"empty", nil, ErrTruncated, "magic number: expected 4 bytes, got 0"},
		{"bad magic", idx(0x12345678, []uint32{n, rows, cols}, body), ErrBadMagic,
			"found 0x12345678 (not an idx file), expected 0x00000803 (idx images)"},
		{"labels magic in images file", idx(MagicLabels, []uint32{n}, body[:n]), ErrBadMagic,
			"found 0x00000801 (idx labels), expected 0x00000803"},
		{"float idx", idx(0x00000d03, []uint32{n, rows, cols}, body), ErrBadMagic, "idx type 0x0d with 3 dimensions"},
		{"zero rows", idx(MagicImages, []uint32{n, 0, cols}, body), ErrBadHeader, "image size 0x28"},
		{"zero cols", idx(MagicImages, []uint32{n, rows, 0}, body), ErrBadHeader, "image size 28x0"},
		{"rows too large", idx(MagicImages, []uint32{n, MaxDim + 1, cols}, body), ErrBadHeader, "want rows and cols in 1..1024"},
		{"too many images", idx(MagicImages, []uint32{MaxCount + 1, rows, cols}, nil), ErrBadHeader, "exceeds the limit"},
		{"max uint32 counts", idx(MagicImages, []uint32{^uint32(0), ^uint32(0), ^uint32(0)}, nil), ErrBadHeader, "exceeds the limit"},
		{"product above bound", idx(MagicImages, []uint32{MaxCount, MaxDim, MaxDim}, nil), ErrBadHeader, "above the limit"},
		// 1<<20 images of 28x28 pass the header checks (822 MB), but the
		// body is missing: the reader must not allocate it all up front.
		{"huge claim, no body", idx(MagicImages, []uint32{MaxCount, rows, cols}, nil), ErrTruncated,
			"image data: expected 822083584 bytes, got 0"},
		{"huge claim in gzip", gz(t, idx(MagicImages, []uint32{MaxCount, rows, cols}, body)), ErrTruncated,
			"expected 822083584 bytes, got 2352"},
		{"truncated magic", valid[:3], ErrTruncated, "magic number: expected 4 bytes, got 3"},
		{"truncated header", valid[:10], ErrTruncated, "image header counts: expected 12 bytes, got 6"},
		{"truncated body at 0", valid[:16], ErrTruncated, "image data: expected 2352 bytes, got 0"},
		{"truncated body at 1", valid[:17], ErrTruncated, "expected 2352 bytes, got 1"},
		{"truncated body after one image", valid[:16+rows*cols], ErrTruncated, "expected 2352 bytes, got 784"},
		{"truncated body by one byte", valid[:len(valid)-1], ErrTruncated, "expected 2352 bytes, got 2351"},
		{"gzip truncated in header", validGz[:5], ErrTruncated, "gzip header"},
		{"gzip truncated in data", validGz[:len(validGz)/2], ErrTruncated, "image data"},
		{"gzip truncated in trailer", validGz[:len(validGz)-4], ErrTruncated, "gzip stream ends early"},
		{"gzip bad method", edit(validGz, func(b []byte) []byte { b[2] = 9; return b }), ErrCorruptGzip, "gzip header"},
		// 0xff starts a deflate block of the reserved type 3.
		{"gzip corrupt deflate", edit(validGz, func(b []byte) []byte {
			copy(b[10:], bytes.Repeat([]byte{0xff}, 16))
			return b
		}), ErrCorruptGzip, "flate: corrupt input"},
		{"gzip bad checksum", edit(validGz, func(b []byte) []byte { b[len(b)-8] ^= 0xff; return b }), ErrCorruptGzip, "invalid checksum"},
		{"gzip member then corrupt member", append(bytes.Clone(validGz), 0x1f, 0x8b, 99, 0, 0, 0, 0, 0, 0, 0), ErrCorruptGzip, "invalid header"},
		{"gzip of bad magic", gz(t, idx(MagicLabels, []uint32{n}, body[:n])), ErrBadMagic, "found 0x00000801"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, _, _, _, err = ReadImages(bytes.NewReader(tt.in)) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadImages error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ReadImages error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if alloc > maxAlloc {
				t.Errorf("ReadImages allocated %d MiB on bad input, want at most %d MiB", alloc>>20, maxAlloc>>20)
			}
		})
	}
}

func TestReadLabelsMalformed(t *testing.T) {
	valid := idx(MagicLabels, []uint32{5}, []byte{0, 1, 2, 3, 4})
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		wantMsg string
	}{
		{"empty", nil, ErrTruncated, "expected 4 bytes, got 0"},
		{"images magic in labels file", idx(MagicImages, []uint32{5, 1, 1}, make([]byte, 5)), ErrBadMagic,
			"found 0x00000803 (idx images), expected 0x00000801 (idx labels)"},
		{"too many labels", idx(MagicLabels, []uint32{MaxCount + 1}, nil), ErrBadHeader, "exceeds the limit"},
		{"truncated header", valid[:6], ErrTruncated, "label header count: expected 4 bytes, got 2"},
		{"truncated body", valid[:10], ErrTruncated, "label data: expected 5 bytes, got 2"},
		{"corrupt gzip", edit(gz(t, valid), func(b []byte) []byte { b[len(b)-5] ^= 0xff; return b }), ErrCorruptGzip, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadLabels(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadLabels error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ReadLabels error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	shapes := []struct {
		name          string
		n, rows, cols int
	}{
		{"empty", 0, 28, 28},
		{"one pixel", 1, 1, 1},
		{"mnist-like", 7, 28, 28},
		{"non-square", 5, 3, 17},
		{"widest", 2, 1, MaxDim},
	}
	encodings := []struct {
		name string
		wrap func(testing.TB, []byte) []byte
	}{
		{"raw", func(_ testing.TB, b []byte) []byte { return b }},
		{"gzip", gz},
	}
	for _, sh := range shapes {
		for _, enc := range encodings {
			t.Run(sh.name+"/"+enc.name, func(t *testing.T) {
				images := randomBytes(sh.n*sh.rows*sh.cols, 2)
				labels := randomBytes(sh.n, 3)

				var ib, lb bytes.Buffer
				if err := WriteImages(&ib, images, sh.n, sh.rows, sh.cols); err != nil {
					t.Fatal(err)
				}
				if err := WriteLabels(&lb, labels); err != nil {
					t.Fatal(err)
				}

				gotImages, n, rows, cols, err := ReadImages(bytes.NewReader(enc.wrap(t, ib.Bytes())))
				if err != nil {
					t.Fatal(err)
				}
				if n != sh.n || rows != sh.rows || cols != sh.cols {
					t.Errorf("ReadImages shape = %d x %dx%d, want %d x %dx%d", n, rows, cols, sh.n, sh.rows, sh.cols)
				}
				if !bytes.Equal(gotImages, images) {
					t.Error("ReadImages pixels differ from what was written")
				}
				gotLabels, err := ReadLabels(bytes.NewReader(enc.wrap(t, lb.Bytes())))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(gotLabels, labels) {
					t.Errorf("ReadLabels = %v, want %v", gotLabels, labels)
				}
			})
		}
	}
}

// TestTrailingBytesIgnored pins down the documented choice: bytes after the
// payload announced by the header are ignored, raw, inside gzip or after the
// last gzip member; and concatenated gzip members read as one stream.
func TestTrailingBytesIgnored(t *testing.T) {
	body := []byte{1, 2, 3, 4}
	raw := idx(MagicImages, []uint32{1, 2, 2}, append(bytes.Clone(body), "trailing"...))
	exact := idx(MagicImages, []uint32{1, 2, 2}, body)
	inputs := map[string][]byte{
		"raw":                    raw,
		"gzip":                   gz(t, raw),
		"after gzip":             append(gz(t, exact), "garbage"...),
		"two gzip members":       append(gz(t, exact[:9]), gz(t, exact[9:])...),
		"empty member then data": append(gz(t, nil), gz(t, raw)...),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			got, n, _, _, err := ReadImages(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || !bytes.Equal(got, body) {
				t.Errorf("ReadImages = %v (n=%d), want %v (n=1)", got, n, body)
			}
		})
	}
}

func TestWriteImagesRejects(t *testing.T) {
	tests := []struct {
		name          string
		images        []byte
		n, rows, cols int
	}{
		{"too few bytes", make([]byte, 3), 1, 2, 2},
		{"too many bytes", make([]byte, 5), 1, 2, 2},
		{"negative count", nil, -1, 2, 2},
		{"zero rows", nil, 0, 0, 2},
		{"too wide", nil, 0, 2, MaxDim + 1},
		{"too many images", nil, MaxCount + 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteImages(io.Discard, tt.images, tt.n, tt.rows, tt.cols)
			if !errors.Is(err, ErrBadHeader) {
				t.Errorf("WriteImages error = %v, want %v", err, ErrBadHeader)
			}
		})
	}
}

// failWriter fails every write, to check that write errors surface.
type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteErrors(t *testing.T) {
	if err := WriteImages(failWriter{}, []byte{0}, 1, 1, 1); !errors.Is(err, errWrite) {
		t.Errorf("WriteImages error = %v, want %v", err, errWrite)
	}
	if err := WriteLabels(failWriter{}, []byte{0}); !errors.Is(err, errWrite) {
		t.Errorf("WriteLabels error = %v, want %v", err, errWrite)
	}
}
