package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FrameVersion is the version of the image frame layout that this package
// writes and reads.
const FrameVersion = 1

// Image frame kinds.
const (
	KindFilters     uint8 = 1 // first-layer filters
	KindActivations uint8 = 2 // a probe image's layer outputs
	KindPrediction  uint8 = 3 // the activations of a private prediction
	KindSnapshot    uint8 = 4 // a stored snapshot: the filters, then a probe's layer outputs
)

// Limits of the image frame layout.
const (
	maxName   = math.MaxUint8  // session id and group names are length-prefixed by a byte
	maxDim    = math.MaxUint16 // H, W and C are uint16
	maxGroups = math.MaxUint16 // the group count is a uint16
)

// ErrBadFrame is wrapped by every error ParseImageFrame returns.
var ErrBadFrame = errors.New("stream: bad image frame")

// ImageGroup is one named set of same-sized maps: a layer's output or its
// filters. Pixels holds H*W*C bytes, channel-major (see ImageFrame).
type ImageGroup struct {
	Name    string
	H, W, C int
	Lo, Hi  float32 // the values that pixel bytes 0 and 255 stand for
	Pixels  []uint8
}

// ImageFrame is a set of images (first-layer filters, activation maps) in
// the binary frame that carries them to the browser: a small header and one
// byte per pixel, so a 64x24x24 activation volume costs about 37 KB rather
// than the ~200 KB it would take as JSON numbers.
//
// Layout, version 1; every integer is little-endian:
//
//	offset size   field
//	0      1      version = 1
//	1      1      kind: 1 filters, 2 activations (a probe image's layer
//	              outputs), 3 prediction (the activations of a private
//	              prediction), 4 snapshot (stored for scrubbing back:
//	              a "filters" group, when the model has one, then a probe
//	              image's layer outputs)
//	2      8      seq, uint64: the topic's sequence number
//	10     8      step, uint64: the training step the images show
//	18     1      L = length of the session id, then L bytes: the session id
//	19+L   2      G = group count, uint16; then G groups, each:
//	       1        N = length of the name, then N bytes: the name
//	                (e.g. "conv1", "pool1", "input")
//	       2        H = height, uint16
//	       2        W = width, uint16
//	       2        C = channels (the number of maps), uint16
//	       4        lo, float32: the value that pixel byte 0 stands for
//	       4        hi, float32: the value that pixel byte 255 stands for
//	       H*W*C    pixels, uint8, channel-major: map 0's H*W bytes row by
//	                row, then map 1's, and so on, so that a browser draws
//	                each map as one ImageData without reshuffling
//
// A pixel byte p stands for the value lo + p*(hi-lo)/255. lo and hi are
// finite. Nothing follows the last group.
type ImageFrame struct {
	Kind    uint8
	Seq     uint64
	Step    uint64
	Session string
	Groups  []ImageGroup
}

// MarshalBinary encodes f in the image frame layout. It checks that every
// size fits its field and that each group's Pixels holds H*W*C bytes.
func (f *ImageFrame) MarshalBinary() ([]byte, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	size := 19 + len(f.Session) + 2
	for i := range f.Groups {
		g := &f.Groups[i]
		size += 1 + len(g.Name) + 6 + 8 + len(g.Pixels)
	}
	b := make([]byte, 0, size)
	b = append(b, FrameVersion, f.Kind)
	b = binary.LittleEndian.AppendUint64(b, f.Seq)
	b = binary.LittleEndian.AppendUint64(b, f.Step)
	b = append(b, byte(len(f.Session)))
	b = append(b, f.Session...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(f.Groups)))
	for i := range f.Groups {
		g := &f.Groups[i]
		b = append(b, byte(len(g.Name)))
		b = append(b, g.Name...)
		b = binary.LittleEndian.AppendUint16(b, uint16(g.H))
		b = binary.LittleEndian.AppendUint16(b, uint16(g.W))
		b = binary.LittleEndian.AppendUint16(b, uint16(g.C))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(g.Lo))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(g.Hi))
		b = append(b, g.Pixels...)
	}
	return b, nil
}

func (f *ImageFrame) validate() error {
	if !validKind(f.Kind) {
		return fmt.Errorf("stream: image frame: unknown kind %d", f.Kind)
	}
	if len(f.Session) > maxName {
		return fmt.Errorf("stream: image frame: session id is %d bytes, at most %d fit", len(f.Session), maxName)
	}
	if len(f.Groups) > maxGroups {
		return fmt.Errorf("stream: image frame: %d groups, at most %d fit", len(f.Groups), maxGroups)
	}
	for i := range f.Groups {
		g := &f.Groups[i]
		if len(g.Name) > maxName {
			return fmt.Errorf("stream: image frame: group %d: name is %d bytes, at most %d fit", i, len(g.Name), maxName)
		}
		if g.H < 0 || g.H > maxDim || g.W < 0 || g.W > maxDim || g.C < 0 || g.C > maxDim {
			return fmt.Errorf("stream: image frame: group %q: size %dx%dx%d outside 0..%d", g.Name, g.H, g.W, g.C, maxDim)
		}
		if n := g.H * g.W * g.C; len(g.Pixels) != n {
			return fmt.Errorf("stream: image frame: group %q: %d pixels, want H*W*C = %d", g.Name, len(g.Pixels), n)
		}
		if !finite(g.Lo) || !finite(g.Hi) {
			return fmt.Errorf("stream: image frame: group %q: lo %v and hi %v must be finite", g.Name, g.Lo, g.Hi)
		}
	}
	return nil
}

// Message encodes f and builds a binary Message with f's Seq.
func (f *ImageFrame) Message() (*Message, error) {
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return NewBinary(f.Seq, b)
}

// ParseImageFrame decodes an image frame. It rejects an unknown version or
// kind, a truncated frame, sizes larger than the bytes that follow, non-finite
// lo or hi and trailing bytes, with errors that wrap ErrBadFrame. It never
// allocates more than len(b) bytes of pixels, and the frame it returns does
// not share memory with b.
func ParseImageFrame(b []byte) (*ImageFrame, error) {
	r := frameReader{b: b}
	version := r.u8("version")
	kind := r.u8("kind")
	if r.err == nil && version != FrameVersion {
		return nil, fmt.Errorf("%w: unsupported version %d, want %d", ErrBadFrame, version, FrameVersion)
	}
	if r.err == nil && !validKind(kind) {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, kind)
	}
	f := &ImageFrame{Kind: kind}
	f.Seq = r.u64("seq")
	f.Step = r.u64("step")
	f.Session = string(r.bytes(int(r.u8("session id length")), "session id"))
	groups := int(r.u16("group count"))
	if r.err != nil {
		return nil, r.err
	}
	// Each group takes at least 15 bytes, so a count the input cannot hold
	// is rejected before it sizes an allocation.
	if left := len(b) - r.off; groups > left/15 {
		return nil, fmt.Errorf("%w: %d groups cannot fit in the %d bytes left", ErrBadFrame, groups, left)
	}
	f.Groups = make([]ImageGroup, groups)
	for i := range f.Groups {
		g := &f.Groups[i]
		g.Name = string(r.bytes(int(r.u8("name length")), "name"))
		g.H = int(r.u16("height"))
		g.W = int(r.u16("width"))
		g.C = int(r.u16("channels"))
		g.Lo = math.Float32frombits(r.u32("lo"))
		g.Hi = math.Float32frombits(r.u32("hi"))
		if r.err != nil {
			return nil, r.err
		}
		if !finite(g.Lo) || !finite(g.Hi) {
			return nil, fmt.Errorf("%w: group %q: lo %v and hi %v must be finite", ErrBadFrame, g.Name, g.Lo, g.Hi)
		}
		// H*W*C < 2^48 cannot overflow an int64, and it is checked
		// against the input's length before anything is allocated.
		n := int64(g.H) * int64(g.W) * int64(g.C)
		if left := int64(len(b) - r.off); n > left {
			return nil, fmt.Errorf("%w: group %q: %dx%dx%d needs %d pixel bytes, %d left", ErrBadFrame, g.Name, g.H, g.W, g.C, n, left)
		}
		g.Pixels = append([]uint8(nil), r.bytes(int(n), "pixels")...)
		if g.Pixels == nil {
			g.Pixels = []uint8{}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if extra := len(b) - r.off; extra > 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the last group", ErrBadFrame, extra)
	}
	return f, nil
}

// frameReader reads the fields of an image frame in order. After the first
// short read it records the error and returns zero values, so a parse reads
// straight through and checks r.err where it matters.
type frameReader struct {
	b   []byte
	off int
	err error
}

func (r *frameReader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if left := len(r.b) - r.off; n > left {
		r.err = fmt.Errorf("%w: truncated: %s at offset %d needs %d bytes, %d left", ErrBadFrame, what, r.off, n, left)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *frameReader) u8(what string) uint8 {
	if p := r.bytes(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *frameReader) u16(what string) uint16 {
	if p := r.bytes(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *frameReader) u32(what string) uint32 {
	if p := r.bytes(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *frameReader) u64(what string) uint64 {
	if p := r.bytes(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func validKind(k uint8) bool { return k >= KindFilters && k <= KindSnapshot }

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Quantize maps h*w*c float32 values to pixel bytes for an ImageGroup: byte
// 0 stands for lo and 255 for hi, linearly, with values outside lo..hi
// clamped and NaN mapped to 0 (if hi <= lo every value maps to 0, which
// stands for lo). src is in HWC order, as the engine stores NHWC maps:
// value (y, x, ch) is src[(y*w+x)*c+ch]. dst is written channel-major:
// dst[ch*h*w + y*w + x]. It panics if dst or src holds fewer than h*w*c
// values.
func Quantize(dst []uint8, src []float32, h, w, c int, lo, hi float32) {
	if h < 0 || w < 0 || c < 0 {
		panic(fmt.Sprintf("stream: Quantize: negative size %dx%dx%d", h, w, c))
	}
	n := h * w * c
	if len(dst) < n || len(src) < n {
		panic(fmt.Sprintf("stream: Quantize: %dx%dx%d needs %d values, have src %d, dst %d", h, w, c, n, len(src), len(dst)))
	}
	var scale float32
	if hi > lo {
		scale = 255 / (hi - lo)
	}
	hw := h * w
	for p := range hw {
		for ch, v := range src[p*c : p*c+c] {
			q := (v-lo)*scale + 0.5 // round to nearest
			var b uint8
			switch {
			case q >= 255:
				b = 255
			case q > 0: // false for NaN
				b = uint8(q)
			}
			dst[ch*hw+p] = b
		}
	}
}

// Range returns the smallest and largest finite values of src, a natural lo
// and hi for Quantize; 0, 0 if src has no finite value.
func Range(src []float32) (lo, hi float32) {
	first := true
	for _, v := range src {
		if !finite(v) {
			continue
		}
		if first {
			lo, hi, first = v, v, false
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}
