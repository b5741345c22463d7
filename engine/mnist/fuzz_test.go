package mnist

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// FuzzReadImages feeds arbitrary bytes (raw and gzip-wrapped seeds) to the
// IDX readers: they must never panic, and whatever they accept must be
// self-consistent and survive a write and a read back.
func FuzzReadImages(f *testing.F) {
	var raw bytes.Buffer
	WriteImages(&raw, make([]uint8, 2*3*4), 2, 3, 4)
	f.Add(raw.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	f.Add(gz.Bytes())
	var labels bytes.Buffer
	WriteLabels(&labels, []uint8{1, 2, 3})
	f.Add(labels.Bytes())
	f.Add([]byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28})
	f.Fuzz(func(t *testing.T, data []byte) {
		if images, n, rows, cols, err := ReadImages(bytes.NewReader(data)); err == nil {
			if len(images) != n*rows*cols {
				t.Fatalf("%d bytes for %dx%dx%d", len(images), n, rows, cols)
			}
			var buf bytes.Buffer
			if err := WriteImages(&buf, images, n, rows, cols); err != nil {
				t.Fatal(err)
			}
			back, _, _, _, err := ReadImages(&buf)
			if err != nil || !bytes.Equal(back, images) {
				t.Fatalf("round trip: %v", err)
			}
		}
		if labels, err := ReadLabels(bytes.NewReader(data)); err == nil {
			var buf bytes.Buffer
			if err := WriteLabels(&buf, labels); err != nil {
				t.Fatal(err)
			}
		}
	})
}
