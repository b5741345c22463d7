package stream

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// sampleFrames returns frames that exercise every field of the layout.
func sampleFrames() map[string]*ImageFrame {
	pixels := func(n int) []uint8 {
		p := make([]uint8, n)
		for i := range p {
			p[i] = uint8(i * 7)
		}
		return p
	}
	return map[string]*ImageFrame{
		"no groups": {Kind: KindFilters, Seq: 1, Step: 2, Session: "s", Groups: []ImageGroup{}},
		"filters": {Kind: KindFilters, Seq: 42, Step: 1000, Session: "a1b2c3", Groups: []ImageGroup{
			{Name: "conv1", H: 3, W: 3, C: 32, Lo: -0.5, Hi: 0.5, Pixels: pixels(3 * 3 * 32)},
		}},
		"activations": {Kind: KindActivations, Seq: math.MaxUint64, Step: math.MaxUint64, Session: "", Groups: []ImageGroup{
			{Name: "input", H: 28, W: 28, C: 1, Lo: 0, Hi: 1, Pixels: pixels(28 * 28)},
			{Name: "conv1", H: 26, W: 26, C: 4, Lo: -1.25, Hi: 3.5, Pixels: pixels(26 * 26 * 4)},
			{Name: "", H: 0, W: 5, C: 2, Lo: 0, Hi: 0, Pixels: []uint8{}},
		}},
		"prediction, long names": {Kind: KindPrediction, Seq: 7, Step: 0, Session: strings.Repeat("s", 255), Groups: []ImageGroup{
			{Name: strings.Repeat("n", 255), H: 1, W: 1, C: 1, Lo: float32(math.Copysign(0, -1)), Hi: math.MaxFloat32, Pixels: []uint8{255}},
		}},
	}
}

func TestImageFrameRoundTrip(t *testing.T) {
	for name, f := range sampleFrames() {
		t.Run(name, func(t *testing.T) {
			b, err := f.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			got, err := ParseImageFrame(b)
			if err != nil {
				t.Fatalf("ParseImageFrame: %v", err)
			}
			if !reflect.DeepEqual(got, f) {
				t.Errorf("round trip changed the frame:\ngot  %+v\nwant %+v", got, f)
			}
			again, err := got.MarshalBinary()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs (err %v)", err)
			}
		})
	}
}

// TestImageFrameLayout pins the byte layout documented on ImageFrame, which
// the browser's decoder and the README rely on.
func TestImageFrameLayout(t *testing.T) {
	f := &ImageFrame{Kind: KindActivations, Seq: 0x0102030405060708, Step: 9, Session: "ab", Groups: []ImageGroup{
		{Name: "c1", H: 1, W: 2, C: 2, Lo: 1, Hi: -2, Pixels: []uint8{10, 11, 20, 21}},
	}}
	want := []byte{
		1,                      // version
		2,                      // kind
		8, 7, 6, 5, 4, 3, 2, 1, // seq
		9, 0, 0, 0, 0, 0, 0, 0, // step
		2, 'a', 'b', // session id
		1, 0, // group count
		2, 'c', '1', // name
		1, 0, 2, 0, 2, 0, // H, W, C
		0x00, 0x00, 0x80, 0x3f, // lo = 1.0
		0x00, 0x00, 0x00, 0xc0, // hi = -2.0
		10, 11, 20, 21, // map 0 then map 1
	}
	got, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("layout:\ngot  %v\nwant %v", got, want)
	}
}

func TestParseImageFrameTruncated(t *testing.T) {
	for name, f := range sampleFrames() {
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			if _, err := ParseImageFrame(b[:n]); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("%s: %d of %d bytes: got error %v, want ErrBadFrame", name, n, len(b), err)
			}
		}
	}
}

func TestParseImageFrameErrors(t *testing.T) {
	valid, err := sampleFrames()["filters"].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Offsets in valid: the group count is at 25, the name "conv1" at 27,
	// H W C at 33, lo at 39, hi at 43, the pixels at 47.
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated: version"},
		{"version 2", edit(func(b []byte) []byte { b[0] = 2; return b }), "unsupported version 2"},
		{"kind 0", edit(func(b []byte) []byte { b[1] = 0; return b }), "unknown kind 0"},
		{"kind 5", edit(func(b []byte) []byte { b[1] = 5; return b }), "unknown kind 5"},
		{"trailing byte", edit(func(b []byte) []byte { return append(b, 0) }), "1 trailing bytes"},
		{"too many groups", edit(func(b []byte) []byte { b[25], b[26] = 0xff, 0xff; return b }), "65535 groups cannot fit"},
		{"huge maps", edit(func(b []byte) []byte {
			copy(b[33:39], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			return b
		}), "needs 281462092005375 pixel bytes"},
		{"NaN lo", edit(func(b []byte) []byte { copy(b[39:43], []byte{0, 0, 0xc0, 0x7f}); return b }), "must be finite"},
		{"infinite hi", edit(func(b []byte) []byte { copy(b[43:47], []byte{0, 0, 0x80, 0x7f}); return b }), "must be finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImageFrame(tt.in)
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("got %v, want an error wrapping ErrBadFrame", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestMarshalImageFrameErrors(t *testing.T) {
	group := func(mod func(g *ImageGroup)) []ImageGroup {
		g := ImageGroup{Name: "conv1", H: 2, W: 2, C: 1, Lo: 0, Hi: 1, Pixels: make([]uint8, 4)}
		mod(&g)
		return []ImageGroup{g}
	}
	tests := []struct {
		name string
		f    ImageFrame
		want string
	}{
		{"kind 0", ImageFrame{Kind: 0}, "unknown kind 0"},
		{"long session", ImageFrame{Kind: 1, Session: strings.Repeat("s", 256)}, "session id is 256 bytes"},
		{"too many groups", ImageFrame{Kind: 1, Groups: make([]ImageGroup, 65536)}, "65536 groups"},
		{"long name", ImageFrame{Kind: 1, Groups: group(func(g *ImageGroup) { g.Name = strings.Repeat("n", 256) })}, "name is 256 bytes"},
		{"short pixels", ImageFrame{Kind: 1, Groups: group(func(g *ImageGroup) { g.Pixels = g.Pixels[:3] })}, "3 pixels, want H*W*C = 4"},
		{"wide", ImageFrame{Kind: 1, Groups: group(func(g *ImageGroup) { g.W, g.H, g.Pixels = 65536, 0, nil })}, "outside 0..65535"},
		{"negative", ImageFrame{Kind: 1, Groups: group(func(g *ImageGroup) { g.C = -1 })}, "outside 0..65535"},
		{"NaN", ImageFrame{Kind: 1, Groups: group(func(g *ImageGroup) { g.Hi = float32(math.NaN()) })}, "must be finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.MarshalBinary()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestQuantize(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name    string
		src     []float32
		h, w, c int
		lo, hi  float32
		want    []uint8
	}{
		{
			// 1x2 image, 2 channels: HWC (x0c0, x0c1, x1c0, x1c1)
			// becomes channel-major (x0c0, x1c0, x0c1, x1c1).
			name: "channel-major", src: []float32{0, 1, 0.5, 0.25}, h: 1, w: 2, c: 2, lo: 0, hi: 1,
			want: []uint8{0, 128, 255, 64},
		},
		{
			name: "rows", src: []float32{1, 2, 3, 4, 5, 6}, h: 2, w: 3, c: 1, lo: 1, hi: 6,
			want: []uint8{0, 51, 102, 153, 204, 255},
		},
		{
			name: "clamped", src: []float32{-10, 10, -inf, inf, nan}, h: 1, w: 5, c: 1, lo: -1, hi: 1,
			want: []uint8{0, 255, 0, 255, 0},
		},
		{
			name: "flat range", src: []float32{3, 3, 4}, h: 1, w: 3, c: 1, lo: 3, hi: 3,
			want: []uint8{0, 0, 0},
		},
		{
			name: "empty", src: nil, h: 0, w: 4, c: 3, lo: 0, hi: 1, want: []uint8{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]uint8, len(tt.want))
			Quantize(got, tt.src, tt.h, tt.w, tt.c, tt.lo, tt.hi)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQuantizePanicsOnShortBuffers(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "stream: ") {
			t.Errorf("recovered %v, want a stream: panic", r)
		}
	}()
	Quantize(make([]uint8, 3), make([]float32, 4), 2, 2, 1, 0, 1)
}

func TestRange(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		src    []float32
		lo, hi float32
	}{
		{nil, 0, 0},
		{[]float32{nan, float32(math.Inf(-1))}, 0, 0},
		{[]float32{2}, 2, 2},
		{[]float32{nan, 3, -1, float32(math.Inf(1)), 2}, -1, 3},
	}
	for _, tt := range tests {
		if lo, hi := Range(tt.src); lo != tt.lo || hi != tt.hi {
			t.Errorf("Range(%v) = %v, %v; want %v, %v", tt.src, lo, hi, tt.lo, tt.hi)
		}
	}
}

// FuzzParseImageFrame checks that any input either fails cleanly or decodes
// to a frame that encodes back to exactly the same bytes.
func FuzzParseImageFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := fr.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseImageFrame(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		again, err := fr.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed frame does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\nin  %x\nout %x", b, again)
		}
	})
}
