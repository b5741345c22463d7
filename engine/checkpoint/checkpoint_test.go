package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.ckpt from goldenFile")

const goldenPath = "testdata/v1.ckpt"

// Float bit patterns that a careless encoder (or a float64 round trip)
// would not preserve.
var (
	quietNaN     = math.Float32frombits(0x7fc00000)
	signalingNaN = math.Float32frombits(0x7f800001)
	negPayNaN    = math.Float32frombits(0xffc0beef)
	negZero      = math.Float32frombits(0x80000000)
	subnormal    = math.Float32frombits(0x00000001)
)

// goldenFile is the content of testdata/v1.ckpt. Changing it requires
// regenerating the golden file with -update, which shows up in review.
func goldenFile() *File {
	return &File{
		Spec: []byte(`{"layers":[{"type":"conv","filters":2,"kernel":2},{"type":"dense","units":1}]}`),
		Meta: []byte(`{"optimizer":"adam","lr":0.001,"beta1":0.9,"beta2":0.999,"step":42,"epoch":3}`),
		Tensors: []Tensor{
			{Name: "conv1.weight", Shape: []int{2, 1, 2, 2}, Data: []float32{
				1, -2, 0.5, negZero, quietNaN, signalingNaN, negPayNaN, subnormal,
			}},
			{Name: "conv1.bias", Shape: []int{2}, Data: []float32{float32(math.Inf(1)), float32(math.Inf(-1))}},
			{Name: "conv1.weight/adam.m", Shape: []int{2, 1, 2, 2}, Data: []float32{
				math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 0, 1e-8, -1e8, 3.14159, 2.71828,
			}},
			{Name: "dense1.bias", Shape: []int{1}, Data: []float32{0.25}},
		},
	}
}

// smallFile is a compact valid checkpoint for the exhaustive
// corruption and truncation tests.
func smallFile() *File {
	return &File{
		Spec: []byte(`{"a":1}`),
		Meta: []byte(`{}`),
		Tensors: []Tensor{
			{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, quietNaN}},
			{Name: "b", Shape: []int{1}, Data: []float32{-1}},
		},
	}
}

func encode(tb testing.TB, f *File) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		tb.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// sameFile reports how got and want differ, comparing floats bit for bit
// (so NaN == NaN only when the payloads match, and 0 != -0). Nil and empty
// slices are treated as equal.
func sameFile(got, want *File) string {
	if !bytes.Equal(got.Spec, want.Spec) {
		return "spec differs"
	}
	if !bytes.Equal(got.Meta, want.Meta) {
		return "meta differs"
	}
	if len(got.Tensors) != len(want.Tensors) {
		return "tensor count differs"
	}
	for i, g := range got.Tensors {
		w := want.Tensors[i]
		if g.Name != w.Name {
			return "tensor name differs: " + g.Name + " vs " + w.Name
		}
		if len(g.Shape) != len(w.Shape) {
			return w.Name + ": ndim differs"
		}
		for j := range g.Shape {
			if g.Shape[j] != w.Shape[j] {
				return w.Name + ": shape differs"
			}
		}
		if len(g.Data) != len(w.Data) {
			return w.Name + ": data length differs"
		}
		for j := range g.Data {
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				return w.Name + ": data differs"
			}
		}
	}
	return ""
}

// readers returns data behind readers that take Read's two allocation
// paths: one whose size Read can query and one whose size it cannot.
func readers(data []byte) []struct {
	name string
	r    io.Reader
} {
	return []struct {
		name string
		r    io.Reader
	}{
		{"bytes.Reader", bytes.NewReader(data)},
		{"plain io.Reader", struct{ io.Reader }{bytes.NewReader(data)}},
	}
}

func TestRoundTrip(t *testing.T) {
	seq := func(n int) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(i)*0.5 - 7
		}
		return d
	}
	long := strings.Repeat("x", MaxNameLen)
	tests := []struct {
		name string
		file *File
	}{
		{"empty", &File{}},
		{"empty spec and meta", &File{Tensors: []Tensor{{Name: "w", Shape: []int{3}, Data: seq(3)}}}},
		{"spec and meta only", &File{Spec: []byte(`{"x":1}`), Meta: []byte(`{"step":1}`)}},
		{"1-D", &File{Spec: []byte(`{}`), Tensors: []Tensor{{Name: "bias", Shape: []int{10}, Data: seq(10)}}}},
		{"4-D", &File{Tensors: []Tensor{{Name: "conv.weight", Shape: []int{4, 3, 3, 3}, Data: seq(108)}}}},
		{"8-D", &File{Tensors: []Tensor{{Name: "t", Shape: []int{1, 2, 1, 2, 1, 2, 1, 2}, Data: seq(16)}}}},
		{"scalar as [1]", &File{Tensors: []Tensor{{Name: "step", Shape: []int{1}, Data: []float32{42}}}}},
		{"special floats", &File{Tensors: []Tensor{{Name: "nan", Shape: []int{9}, Data: []float32{
			quietNaN, signalingNaN, negPayNaN, negZero, subnormal,
			float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, 0,
		}}}}},
		{"longest name", &File{Tensors: []Tensor{{Name: long, Shape: []int{1}, Data: []float32{1}}}}},
		{"unicode name", &File{Tensors: []Tensor{{Name: "Gewicht/überall/β₁", Shape: []int{1}, Data: []float32{1}}}}},
		{"larger than one chunk", &File{Tensors: []Tensor{{Name: "big", Shape: []int{300, 301}, Data: seq(300 * 301)}}}},
		{"larger than prealloc", &File{Tensors: []Tensor{
			{Name: "a", Shape: []int{maxPrealloc + 3}, Data: seq(maxPrealloc + 3)},
			{Name: "b", Shape: []int{5, maxPrealloc + 1}, Data: seq(5 * (maxPrealloc + 1))},
		}}},
		{"golden", goldenFile()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encode(t, tt.file)
			for _, r := range readers(data) {
				got, err := Read(r.r)
				if err != nil {
					t.Fatalf("Read from %s: %v", r.name, err)
				}
				if diff := sameFile(got, tt.file); diff != "" {
					t.Fatalf("round trip through %s: %s", r.name, diff)
				}
				// Writing what was read must reproduce the bytes exactly.
				if again := encode(t, got); !bytes.Equal(again, data) {
					t.Fatalf("re-encoding after reading from %s differs", r.name)
				}
			}
		})
	}
}

// TestLayout spells out the bytes of a tiny checkpoint field by field, so
// that the documented layout, not just self-consistency, is tested.
func TestLayout(t *testing.T) {
	f := &File{
		Spec:    []byte("{}"),
		Tensors: []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, -2}}},
	}
	want := []byte("CNNVIZCK")
	want = append(want, 1, 0, 0, 0)           // version
	want = append(want, 2, 0, 0, 0, '{', '}') // specLen, spec
	want = append(want, 0, 0, 0, 0)           // metaLen
	want = append(want, 1, 0, 0, 0)           // count
	want = append(want, 1, 0, 'w')            // nameLen, name
	want = append(want, 1)                    // ndim
	want = append(want, 2, 0, 0, 0)           // dims
	want = append(want, 0, 0, 0x80, 0x3f)     // 1.0
	want = append(want, 0, 0, 0, 0xc0)        // -2.0
	// CRC-32C, not the IEEE CRC-32 that crc32.ChecksumIEEE would give.
	want = binary.LittleEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))

	if got := encode(t, f); !bytes.Equal(got, want) {
		t.Fatalf("Write:\n got % x\nwant % x", got, want)
	}
}

// TestGolden pins version 1 to a file in testdata, so that a change to the
// encoder cannot silently make old checkpoints unreadable. Regenerate with
// go test ./engine/checkpoint -run TestGolden -update, and only together
// with a version bump.
func TestGolden(t *testing.T) {
	want := encode(t, goldenFile())
	if *update {
		if err := os.WriteFile(goldenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("Write output differs from %s: the v1 format drifted", goldenPath)
	}
	got, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Read(%s): %v", goldenPath, err)
	}
	if diff := sameFile(got, goldenFile()); diff != "" {
		t.Errorf("Read(%s): %s", goldenPath, diff)
	}
}

// raw builds checkpoint bytes by hand, including invalid ones.
type raw []byte

func header(version uint32) raw {
	return raw(Magic).u32(version)
}

func (b raw) u8(v uint8) raw    { return append(b, v) }
func (b raw) u16(v uint16) raw  { return binary.LittleEndian.AppendUint16(b, v) }
func (b raw) u32(v uint32) raw  { return binary.LittleEndian.AppendUint32(b, v) }
func (b raw) str(s string) raw  { return append(b, s...) }
func (b raw) name(s string) raw { return b.u16(uint16(len(s))).str(s) }
func (b raw) blobs(spec, meta string) raw {
	return b.u32(uint32(len(spec))).str(spec).u32(uint32(len(meta))).str(meta)
}

// oneTensor returns a header announcing one tensor. Its capacity is
// clipped so that tests appending different records to the same value get
// independent copies instead of overwriting each other.
func oneTensor() raw {
	return slices.Clip(header(1).blobs("", "").u32(1))
}

// dims writes ndim and the dims.
func (b raw) dims(d ...uint32) raw {
	b = b.u8(uint8(len(d)))
	for _, x := range d {
		b = b.u32(x)
	}
	return b
}

// floats appends n zero floats.
func (b raw) floats(n int) raw { return append(b, make([]byte, 4*n)...) }

// seal appends the correct checksum, so that a test reaches the check it
// targets instead of failing on the checksum.
func (b raw) seal() []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func TestReadErrors(t *testing.T) {
	valid := encode(t, smallFile())
	badCRC := bytes.Clone(valid)
	badCRC[len(badCRC)-1] ^= 0x55
	one := oneTensor()

	tests := []struct {
		name    string
		data    []byte
		want    error
		wantMsg string // substring of the error message, if set
	}{
		{"empty input", nil, ErrTruncated, "magic"},
		{"magic prefix only", []byte("CNNV"), ErrTruncated, "magic"},
		{"short unrelated file", []byte("hi\n"), ErrBadMagic, ""},
		{"bad magic", raw("CNNVIZCX").u32(1).blobs("", "").u32(0).seal(), ErrBadMagic, ""},
		{"json instead", []byte(`{"layers":[]}`), ErrBadMagic, ""},
		{"version 2", header(2).blobs("", "").u32(0).seal(), ErrVersion, "file has version 2, supported versions: 1"},
		{"version 0", header(0).blobs("", "").u32(0).seal(), ErrVersion, "version 0"},
		{"truncated version", raw(Magic).u16(1), ErrTruncated, "version"},
		{"spec too big", header(1).u32(MaxBlobLen + 1), ErrTooBig, "spec"},
		{"meta too big", header(1).u32(0).u32(math.MaxUint32), ErrTooBig, "meta"},
		{"truncated spec", header(1).u32(10).str("{}"), ErrTruncated, "spec"},
		{"too many tensors", header(1).blobs("", "").u32(MaxTensors + 1), ErrTooBig, "tensors"},
		{"count larger than content", header(1).blobs("", "").u32(2).name("w").dims(1).floats(1), ErrTruncated, "tensor 1 name length"},
		{"empty name", one.name("").dims(1).floats(1).seal(), ErrMalformed, "empty name"},
		{"name too long", one.u16(MaxNameLen + 1).str(strings.Repeat("n", MaxNameLen+1)).dims(1).floats(1).seal(), ErrTooBig, "name"},
		{"name max uint16", one.u16(math.MaxUint16), ErrTooBig, "name"},
		{"invalid utf-8 name", one.name("w\xff").dims(1).floats(1).seal(), ErrMalformed, "UTF-8"},
		{"duplicate name", header(1).blobs("", "").u32(2).name("w").dims(1).floats(1).name("w").dims(1).floats(1).seal(), ErrMalformed, "duplicate"},
		{"zero ndim", one.name("w").dims().seal(), ErrMalformed, "no dimensions"},
		{"too many dims", one.name("w").dims(1, 1, 1, 1, 1, 1, 1, 1, 1).floats(1).seal(), ErrTooBig, "dimensions"},
		{"zero dim", one.name("w").dims(3, 0).seal(), ErrMalformed, "dimension 0"},
		{"dim too big", one.name("w").dims(math.MaxUint32), ErrTooBig, "dimension"},
		{"product too big", one.name("w").dims(1<<14, 1<<15), ErrTooBig, "elements"},
		{"product would overflow", one.name("w").dims(1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28), ErrTooBig, "elements"},
		{"truncated dims", one.name("w").u8(2).u32(3), ErrTruncated, `tensor 0 ("w") dims`},
		{"truncated data", one.name("w").dims(4).floats(3), ErrTruncated, `tensor 0 ("w") data`},
		{"missing checksum", header(1).blobs("", "").u32(0), ErrTruncated, "checksum"},
		{"partial checksum", valid[:len(valid)-2], ErrTruncated, "checksum"},
		{"bad checksum", badCRC, ErrChecksum, "stored"},
		{"trailing byte", append(bytes.Clone(valid), 0), ErrMalformed, "trailing"},
		{"two files concatenated", append(bytes.Clone(valid), valid...), ErrMalformed, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Read(bytes.NewReader(tt.data))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read = %v, want error wrapping %v", err, tt.want)
			}
			if f != nil {
				t.Errorf("Read returned a File along with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			if tt.want == ErrTruncated && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("truncation error %v does not wrap io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tensor := func(name string, shape []int, n int) Tensor {
		return Tensor{Name: name, Shape: shape, Data: make([]float32, n)}
	}
	many := make([]Tensor, MaxTensors+1)
	for i := range many {
		many[i] = tensor(strings.Repeat("t", i%200+1)+string(rune('a'+i/200)), []int{1}, 1)
	}
	tests := []struct {
		name string
		file *File
		want error
	}{
		{"nil file", nil, ErrMalformed},
		{"data too short", &File{Tensors: []Tensor{tensor("w", []int{2, 3}, 5)}}, ErrMalformed},
		{"data too long", &File{Tensors: []Tensor{tensor("w", []int{2, 3}, 7)}}, ErrMalformed},
		{"no shape", &File{Tensors: []Tensor{tensor("w", nil, 0)}}, ErrMalformed},
		{"zero dim", &File{Tensors: []Tensor{tensor("w", []int{2, 0}, 0)}}, ErrMalformed},
		{"negative dim", &File{Tensors: []Tensor{tensor("w", []int{-2, -3}, 6)}}, ErrMalformed},
		{"too many dims", &File{Tensors: []Tensor{tensor("w", []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, 1)}}, ErrTooBig},
		{"too many elements", &File{Tensors: []Tensor{tensor("w", []int{1 << 20, 1 << 20}, 0)}}, ErrTooBig},
		{"dim beyond uint32", &File{Tensors: []Tensor{tensor("w", []int{math.MaxInt}, 0)}}, ErrTooBig},
		{"empty name", &File{Tensors: []Tensor{tensor("", []int{1}, 1)}}, ErrMalformed},
		{"name too long", &File{Tensors: []Tensor{tensor(strings.Repeat("n", MaxNameLen+1), []int{1}, 1)}}, ErrTooBig},
		{"invalid utf-8 name", &File{Tensors: []Tensor{tensor("\xc0", []int{1}, 1)}}, ErrMalformed},
		{"duplicate name", &File{Tensors: []Tensor{tensor("w", []int{1}, 1), tensor("w", []int{1}, 1)}}, ErrMalformed},
		{"spec too big", &File{Spec: make([]byte, MaxBlobLen+1)}, ErrTooBig},
		{"meta too big", &File{Meta: make([]byte, MaxBlobLen+1)}, ErrTooBig},
		{"too many tensors", &File{Tensors: many}, ErrTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tt.file)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Write = %v, want error wrapping %v", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing validation", buf.Len())
			}
		})
	}
}

// TestLimitsAccepted checks that values exactly at the limits are valid,
// so the limit checks are not off by one.
func TestLimitsAccepted(t *testing.T) {
	many := make([]Tensor, MaxTensors)
	for i := range many {
		many[i] = Tensor{Name: string(rune(0x4e00 + i)), Shape: []int{1}, Data: []float32{float32(i)}}
	}
	f := &File{
		Spec:    bytes.Repeat([]byte("s"), MaxBlobLen),
		Meta:    bytes.Repeat([]byte("m"), MaxBlobLen),
		Tensors: many,
	}
	got, err := Read(bytes.NewReader(encode(t, f)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if diff := sameFile(got, f); diff != "" {
		t.Fatal(diff)
	}
}

type failWriter struct{ n int }

var errDisk = errors.New("disk on fire")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errDisk
	}
	k := min(len(p), w.n)
	w.n -= k
	if k < len(p) {
		return k, errDisk
	}
	return k, nil
}

type failReader struct{ r io.Reader }

func (r failReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		err = errDisk
	}
	return n, err
}

// TestIOErrors checks that errors from the underlying writer or reader are
// passed through rather than disguised as format errors.
func TestIOErrors(t *testing.T) {
	data := encode(t, goldenFile())
	for _, n := range []int{0, 10, len(data) - 1} {
		if err := Write(&failWriter{n: n}, goldenFile()); !errors.Is(err, errDisk) {
			t.Errorf("Write to writer failing after %d bytes = %v, want %v", n, err, errDisk)
		}
	}
	for _, n := range []int{0, 10, len(data) - 1} {
		_, err := Read(failReader{bytes.NewReader(data[:n])})
		if !errors.Is(err, errDisk) || errors.Is(err, ErrTruncated) {
			t.Errorf("Read from reader failing after %d bytes = %v, want %v", n, err, errDisk)
		}
	}
	// An error after the checksum, where Read looks for trailing bytes.
	if _, err := Read(failReader{bytes.NewReader(data)}); !errors.Is(err, errDisk) {
		t.Errorf("Read from reader failing at the end = %v, want %v", err, errDisk)
	}
}

// TestCorruptEveryByte changes each byte of a small checkpoint in turn.
// CRC-32C detects every error confined to 32 consecutive bits, so every
// single-byte change must be reported, whichever check catches it first.
func TestCorruptEveryByte(t *testing.T) {
	valid := encode(t, smallFile())
	for _, mask := range []byte{0x01, 0x80, 0xff} {
		for i := range valid {
			data := bytes.Clone(valid)
			data[i] ^= mask
			if f, err := Read(bytes.NewReader(data)); err == nil {
				t.Errorf("byte %d ^ %#02x: Read succeeded with %d tensors", i, mask, len(f.Tensors))
			}
		}
	}
}

// TestTruncateEveryOffset cuts a checkpoint at every length. Every field
// is length-prefixed, so a strict prefix always runs out of input before
// the checksum can be compared: the error is always ErrTruncated.
func TestTruncateEveryOffset(t *testing.T) {
	valid := encode(t, smallFile())
	for n := range len(valid) {
		_, err := Read(bytes.NewReader(valid[:n]))
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("truncated to %d of %d bytes: Read = %v, want ErrTruncated", n, len(valid), err)
		}
	}
}

// allocated returns the bytes allocated by fn. Tests using it must not run
// in parallel.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeClaims feeds Read tiny files whose headers claim huge sizes and
// checks that it fails without allocating anything like the claimed size.
func TestHugeClaims(t *testing.T) {
	one := oneTensor()
	tests := []struct {
		name     string
		data     []byte
		want     error
		maxAlloc uint64
	}{
		// Over the limit: rejected before any allocation for the data.
		{"tensor of 2^32 elements", one.name("w").dims(1<<16, 1<<16), ErrTooBig, 256 << 10},
		{"tensor of 2^224 elements", one.name("w").dims(1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28, 1<<28), ErrTooBig, 256 << 10},
		{"4 GiB spec", header(1).u32(math.MaxUint32), ErrTooBig, 256 << 10},
		{"4 billion tensors", header(1).blobs("", "").u32(math.MaxUint32), ErrTooBig, 256 << 10},
		// At the limit (1 GiB of data): legal, so Read starts reading, but
		// allocates only up to maxPrealloc values before running out.
		{"tensor of MaxElements", one.name("w").dims(MaxElements).floats(2), ErrTruncated, 1 << 20},
		{"MaxTensors tensors", header(1).blobs("", "").u32(MaxTensors).name("w").dims(1), ErrTruncated, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.data) > 64 {
				t.Fatalf("test input is %d bytes, want a few", len(tt.data))
			}
			for _, r := range readers(tt.data) {
				var err error
				n := allocated(func() { _, err = Read(r.r) })
				if !errors.Is(err, tt.want) {
					t.Fatalf("Read from %s = %v, want error wrapping %v", r.name, err, tt.want)
				}
				if n > tt.maxAlloc {
					t.Errorf("Read from %s allocated %d bytes for a %d-byte input, want at most %d",
						r.name, n, len(tt.data), tt.maxAlloc)
				}
			}
		})
	}
}

// TestReadDoesNotAlias checks that the returned File owns its memory: it
// shares nothing with the input or with other results.
func TestReadDoesNotAlias(t *testing.T) {
	data := encode(t, smallFile())
	orig := bytes.Clone(data)
	a, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over everything in a.
	for i := range a.Spec {
		a.Spec[i] = 'X'
	}
	for i := range a.Meta {
		a.Meta[i] = 'X'
	}
	for _, tn := range a.Tensors {
		for i := range tn.Data {
			tn.Data[i] = 99
		}
		tn.Shape[0] = 99
	}
	if !bytes.Equal(data, orig) {
		t.Fatal("modifying the result changed the input bytes")
	}
	if diff := sameFile(b, smallFile()); diff != "" {
		t.Fatalf("modifying one result changed another: %s", diff)
	}
	// The two tensors of one result must not overlap either.
	w, _ := b.Tensor("w")
	bias, _ := b.Tensor("b")
	w.Data[0] = 123
	if bias.Data[0] != -1 {
		t.Fatal("tensors of one result share memory")
	}
}

func TestTensorLookup(t *testing.T) {
	f := goldenFile()
	tests := []struct {
		name   string
		ok     bool
		wantLn int
	}{
		{"conv1.weight", true, 8},
		{"conv1.weight/adam.m", true, 8},
		{"dense1.bias", true, 1},
		{"conv1", false, 0},
		{"", false, 0},
	}
	for _, tt := range tests {
		got, ok := f.Tensor(tt.name)
		if ok != tt.ok || len(got.Data) != tt.wantLn || (ok && got.Name != tt.name) {
			t.Errorf("Tensor(%q) = %q with %d values, %v; want %d values, %v",
				tt.name, got.Name, len(got.Data), ok, tt.wantLn, tt.ok)
		}
	}
}

// dirNames lists dir, to check that Save leaves no temporary files behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	for _, f := range []*File{smallFile(), goldenFile()} { // the second overwrites the first
		if err := Save(path, f); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := sameFile(got, f); diff != "" {
			t.Fatalf("Load after Save: %s", diff)
		}
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "model.ckpt" {
		t.Errorf("directory holds %q, want only model.ckpt", names)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o644 {
			t.Errorf("saved file has mode %v, want 0644", perm)
		}
	}
}

func TestSaveAtomic(t *testing.T) {
	bad := &File{Tensors: []Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}}
	tests := []struct {
		name string
		// setup prepares dir and returns the path to save to and the
		// content expected there afterwards (nil: no checkpoint).
		setup func(t *testing.T, dir string) (path string, want *File)
		file  *File
		want  error
	}{
		{
			name: "invalid file keeps previous checkpoint",
			setup: func(t *testing.T, dir string) (string, *File) {
				path := filepath.Join(dir, "model.ckpt")
				if err := Save(path, smallFile()); err != nil {
					t.Fatal(err)
				}
				return path, smallFile()
			},
			file: bad,
			want: ErrMalformed,
		},
		{
			name: "invalid file with no previous checkpoint",
			setup: func(t *testing.T, dir string) (string, *File) {
				return filepath.Join(dir, "model.ckpt"), nil
			},
			file: bad,
			want: ErrMalformed,
		},
		{
			// The rename fails after the temp file was fully written and
			// synced, exercising the last cleanup path.
			name: "path is a directory",
			setup: func(t *testing.T, dir string) (string, *File) {
				path := filepath.Join(dir, "model.ckpt")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return path, nil
			},
			file: smallFile(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, want := tt.setup(t, dir)
			before := dirNames(t, dir)
			err := Save(path, tt.file)
			if err == nil {
				t.Fatal("Save succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Save = %v, want error wrapping %v", err, tt.want)
			}
			if after := dirNames(t, dir); !slices.Equal(after, before) {
				t.Errorf("failed Save changed the directory from %q to %q", before, after)
			}
			if want == nil {
				return
			}
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load after failed Save: %v", err)
			}
			if diff := sameFile(got, want); diff != "" {
				t.Fatalf("failed Save changed the previous checkpoint: %s", diff)
			}
		})
	}
}

func TestSaveMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "model.ckpt")
	if err := Save(path, smallFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Save into missing directory = %v, want os.ErrNotExist", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.ckpt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
	path := filepath.Join(dir, "short.ckpt")
	valid := encode(t, smallFile())
	if err := os.WriteFile(path, valid[:len(valid)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("Load(truncated) = %v, want ErrTruncated", err)
	}
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("Load error %q does not name the file", err)
	}
}
