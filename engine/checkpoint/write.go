package checkpoint

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// chunkBytes is the size of the scratch buffer used to convert float32
// data to and from bytes. 64 KiB amortises per-call overhead without holding
// much memory. The bufio buffers can stay at their default size: they only
// batch the small header fields, because bufio passes large reads and
// writes straight through.
const chunkBytes = 64 << 10

// Write encodes f to w in the current format version (see the package
// documentation for the layout). It validates f first (see File.Validate),
// so an invalid File writes nothing. Write buffers internally and flushes
// before returning; it does not close w.
func Write(w io.Writer, f *File) error {
	if err := f.Validate(); err != nil {
		return err
	}
	e := encoder{w: bufio.NewWriter(w), scratch: make([]byte, chunkBytes)}

	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u32(uint32(len(f.Spec)))
	e.bytes(f.Spec)
	e.u32(uint32(len(f.Meta)))
	e.bytes(f.Meta)
	e.u32(uint32(len(f.Tensors)))
	for _, t := range f.Tensors {
		// The narrowing conversions below are safe: Validate bounded every
		// value by a limit that fits the field.
		e.u16(uint16(len(t.Name)))
		e.bytes(append(e.scratch[:0], t.Name...))
		e.u8(uint8(len(t.Shape)))
		for _, d := range t.Shape {
			e.u32(uint32(d))
		}
		e.floats(t.Data)
	}

	// The checksum covers everything written so far and is itself not
	// hashed, so it bypasses e.bytes.
	if e.err == nil {
		_, e.err = e.w.Write(binary.LittleEndian.AppendUint32(e.scratch[:0], e.crc))
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("checkpoint: write: %w", e.err)
	}
	return nil
}

// encoder writes little-endian fields while keeping a running CRC-32C.
// It remembers the first error and turns later writes into no-ops, so Write
// can be a straight list of fields with one error check at the end.
type encoder struct {
	w       *bufio.Writer
	crc     uint32
	scratch []byte
	err     error
}

func (e *encoder) bytes(p []byte) {
	if e.err != nil {
		return
	}
	e.crc = crc32.Update(e.crc, castagnoli, p)
	_, e.err = e.w.Write(p)
}

func (e *encoder) u8(v uint8) { e.bytes(append(e.scratch[:0], v)) }

func (e *encoder) u16(v uint16) {
	e.bytes(binary.LittleEndian.AppendUint16(e.scratch[:0], v))
}

func (e *encoder) u32(v uint32) {
	e.bytes(binary.LittleEndian.AppendUint32(e.scratch[:0], v))
}

// floats writes data a chunk at a time through the scratch buffer, which is
// much faster than one binary.Write per value and independent of the host's
// byte order.
func (e *encoder) floats(data []float32) {
	per := len(e.scratch) / 4
	for len(data) > 0 && e.err == nil {
		n := min(len(data), per)
		buf := e.scratch[:4*n]
		for i, v := range data[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		e.bytes(buf)
		data = data[n:]
	}
}
