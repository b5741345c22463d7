package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// FuzzRead checks that Read never panics, that every failure wraps one of
// the package's sentinel errors, and that whatever Read accepts is
// canonical: writing it back reproduces the input exactly.
//
// Random bytes almost never carry a valid checksum, which would confine the
// fuzzer to the checks before it. So each input is also tried with its last
// four bytes replaced by the correct CRC-32C, which lets mutations of the
// structure reach the success path and the round-trip check.
func FuzzRead(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, data)
		if len(data) >= 4 {
			fixed := bytes.Clone(data)
			body := fixed[:len(fixed)-4]
			binary.LittleEndian.PutUint32(fixed[len(body):], crc32.Checksum(body, castagnoli))
			checkRead(t, fixed)
		}
	})
}

func checkRead(t *testing.T, data []byte) {
	f, err := Read(bytes.NewReader(data))
	if err != nil {
		// A bytes.Reader only ever fails with io.EOF, so every error must
		// be one of ours.
		known := false
		for _, s := range []error{ErrBadMagic, ErrVersion, ErrChecksum, ErrTruncated, ErrTooBig, ErrMalformed} {
			known = known || errors.Is(err, s)
		}
		if !known {
			t.Fatalf("Read returned an error wrapping no sentinel: %v", err)
		}
		return
	}
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		t.Fatalf("Write(Read(x)) failed: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("Write(Read(x)) != x:\n got % x\nwant % x", buf.Bytes(), data)
	}
}

// fuzzSeeds returns valid checkpoints and a selection of corrupt ones.
func fuzzSeeds(tb testing.TB) [][]byte {
	small := encode(tb, smallFile())
	golden := encode(tb, goldenFile())
	empty := encode(tb, &File{})
	flipped := bytes.Clone(small)
	flipped[len(flipped)/2] ^= 0xff
	one := oneTensor()
	return [][]byte{
		small,
		golden,
		empty,
		encode(tb, &File{Spec: []byte(`{}`), Meta: []byte(`{"step":1}`)}),
		nil,
		[]byte(Magic),
		small[:len(small)/2],
		small[:len(small)-1],
		flipped,
		append(bytes.Clone(small), 0),
		header(2).blobs("", "").u32(0).seal(),
		one.name("w").dims(1<<16, 1<<16),
		one.name("w").dims(0).seal(),
		one.name("").dims(1).floats(1).seal(),
		header(1).blobs("", "").u32(2).name("w").dims(1).floats(1).name("w").dims(1).floats(1).seal(),
	}
}
