package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
)

// MNIST normalisation of hand-drawn digits.
//
// The MNIST digits were size-normalised to fit a 20x20 box, keeping their
// aspect ratio, with anti-aliasing (hence the grey edges), and then centred
// in a 28x28 field by their centre of mass. A digit drawn on a browser
// canvas is large, off-centre and of arbitrary proportions; Preprocess
// applies the same normalisation so that the network sees what it was
// trained on.

// Limits and constants of the MNIST normalisation.
const (
	// DrawingMinSize and DrawingMaxSize bound a Drawing's width and height.
	DrawingMinSize = 8
	DrawingMaxSize = 1024

	// InkThreshold is the largest pixel value that still counts as
	// background when the ink's bounding box is found: faint anti-aliasing
	// or smudges at or below 16/255 do not stretch the box. Pixels inside
	// the box keep their value whatever it is.
	InkThreshold = 16

	// mnistSide is the side of the network input, mnistBox the side of the
	// box the digit is scaled to fit and mnistCentre the target of its
	// centre of mass.
	mnistSide   = 28
	mnistBox    = 20
	mnistCentre = 14
)

// ErrBadDrawing is wrapped by the errors Preprocess returns for a Drawing it
// cannot accept; the message says what is wrong. Match it with errors.Is.
var ErrBadDrawing = errors.New("engine: invalid drawing")

// Drawing is a greyscale canvas: W*H bytes row-major, 0 = background,
// 255 = full ink.
type Drawing struct {
	W, H   int
	Pixels []uint8
}

// Preprocessed holds every step of the normalisation, so that a UI can show
// the pipeline.
//
// Coordinates follow the usual image convention: x to the right, y down,
// and pixel (x, y) is centred on the point (x, y). In that convention the
// MNIST digits' centres of mass lie at (14, 14) on average (14.007, 13.986
// over the 1000 test images in testdata/mnist), which is the target used
// here.
type Preprocessed struct {
	// BBox is the bounding box, in the drawing, of the pixels brighter than
	// InkThreshold. It is empty when Empty is set.
	BBox image.Rectangle

	// Scaled is the content of BBox resampled to ScaledW x ScaledH, values
	// in [0,1] (pixel/255), row-major. The longer side is 20 and the shorter
	// one round(20*short/long), at least 1. Each output pixel is the
	// area-weighted average of the drawing pixels it covers (a box filter
	// with fractional coverage at its edges), which both down-scales with
	// MNIST-like grey, anti-aliased edges and up-scales a small drawing.
	// Nil when Empty is set.
	Scaled           []float32
	ScaledW, ScaledH int

	// Image is the network input: Scaled placed in a 28x28 field at Shift,
	// zero elsewhere, values in [0,1], row-major.
	//
	// Shift is chosen so that the intensity-weighted centre of mass of
	// Scaled, computed with fractions, lands on (14, 14): Shift =
	// round((14, 14) - com), rounding halves away from zero. The centre of
	// mass therefore ends up within half a pixel of (14, 14) on each axis,
	// unless the clamp below intervened.
	//
	// Shift is clamped so that the whole ScaledW x ScaledH box stays inside
	// the 28x28 field (0 <= Shift.X <= 28-ScaledW, likewise for Y), so no
	// ink is ever cut off and the total ink of Image equals that of Scaled.
	// With a 20-pixel side the clamp acts only when the centre of mass is
	// less than 6 pixels from the box's top (left) edge or more than 14
	// from it: a "7" whose ink is mostly in its top bar, say. Such a digit
	// then touches the border of the field, its centre of mass up to a few
	// pixels off (14, 14).
	//
	// MNIST itself seems not to have clamped: in testdata/mnist every one
	// of the 5000 digits has its centre of mass within half a pixel of
	// (14, 14), and 77 of them have ink on the field's border, where some
	// strokes may have been cut. We prefer a whole digit a little off
	// centre, which the convolutions tolerate, to a centred one missing a
	// stroke, which can change what digit it is (a "7" without its stem).
	Image [mnistSide * mnistSide]float32

	// Shift is where the top-left pixel of Scaled landed in Image.
	Shift image.Point

	// Empty reports that the drawing holds no ink (no pixel brighter than
	// InkThreshold). Image is then all zeros.
	Empty bool
}

// Preprocess validates d and normalises it as the MNIST digits were: the
// ink's bounding box is scaled to fit a 20x20 box (aspect kept, area
// averaged) and then placed in a 28x28 field with its centre of mass at
// (14, 14). See Preprocessed for the details of each step.
//
// d.W and d.H must lie in DrawingMinSize..DrawingMaxSize and len(d.Pixels)
// must be d.W*d.H; otherwise the error, which wraps ErrBadDrawing, says
// what is wrong. d is only read.
//
// A drawing that is already 28x28 (from a small canvas, or an MNIST image)
// is not passed through: it is normalised in exactly the same way, its ink
// cropped, rescaled to fit 20x20 and re-centred. For an actual MNIST image
// that is close to the identity, since its digit already fits 20x20 with
// its centre of mass near (14, 14), but a digit drawn on a 28x28 canvas
// at any size or position gets normalised.
func Preprocess(d Drawing) (*Preprocessed, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	p := &Preprocessed{BBox: inkBBox(d)}
	if p.BBox.Empty() {
		p.Empty = true
		return p, nil
	}

	bw, bh := p.BBox.Dx(), p.BBox.Dy()
	if bh >= bw {
		p.ScaledW, p.ScaledH = scaledShort(bw, bh), mnistBox
	} else {
		p.ScaledW, p.ScaledH = mnistBox, scaledShort(bh, bw)
	}
	p.Scaled = resample(d, p.BBox, p.ScaledW, p.ScaledH)

	// Centre of mass of Scaled, then the shift that moves it to (14, 14).
	// Scaled has positive mass: every pixel of BBox has a positive weight
	// in some output pixel, and BBox holds at least one inked pixel.
	var mass, mx, my float64
	for y := range p.ScaledH {
		row := p.Scaled[y*p.ScaledW : (y+1)*p.ScaledW]
		for x, v := range row {
			// The explicit conversions forbid fused multiply-adds, which
			// Go may use on some architectures, so that results (and the
			// golden files) are the same everywhere.
			mass += float64(v)
			mx += float64(float64(v) * float64(x))
			my += float64(float64(v) * float64(y))
		}
	}
	p.Shift = image.Point{
		X: clampInt(int(math.Round(mnistCentre-mx/mass)), 0, mnistSide-p.ScaledW),
		Y: clampInt(int(math.Round(mnistCentre-my/mass)), 0, mnistSide-p.ScaledH),
	}
	for y := range p.ScaledH {
		dst := p.Image[(y+p.Shift.Y)*mnistSide+p.Shift.X:]
		copy(dst[:p.ScaledW], p.Scaled[y*p.ScaledW:(y+1)*p.ScaledW])
	}
	return p, nil
}

// Bytes returns Image as greyscale bytes, 0 = background, 255 = full ink,
// each value rounded to the nearest level, for display.
func (p *Preprocessed) Bytes() []uint8 {
	out := make([]uint8, len(p.Image))
	for i, v := range p.Image {
		out[i] = uint8(math.Round(float64(clamp01(v)) * 255))
	}
	return out
}

// validate reports what is wrong with d, if anything. The sizes are checked
// before they are multiplied, so that a huge W*H cannot overflow.
func (d Drawing) validate() error {
	if d.W < DrawingMinSize || d.W > DrawingMaxSize {
		return fmt.Errorf("%w: width %d is outside %d..%d", ErrBadDrawing, d.W, DrawingMinSize, DrawingMaxSize)
	}
	if d.H < DrawingMinSize || d.H > DrawingMaxSize {
		return fmt.Errorf("%w: height %d is outside %d..%d", ErrBadDrawing, d.H, DrawingMinSize, DrawingMaxSize)
	}
	if len(d.Pixels) != d.W*d.H {
		return fmt.Errorf("%w: %d pixels for a %dx%d drawing, want %d", ErrBadDrawing, len(d.Pixels), d.W, d.H, d.W*d.H)
	}
	return nil
}

// inkBBox returns the bounding box of the pixels above InkThreshold, or the
// zero (empty) rectangle if there are none. Blank rows are skipped eight
// bytes at a time, and rows between the first and last inked ones are only
// searched outside the columns already known to be in the box.
func inkBBox(d Drawing) image.Rectangle {
	row := func(y int) []uint8 { return d.Pixels[y*d.W : (y+1)*d.W] }
	y0 := 0
	for y0 < d.H && !hasInk(row(y0)) {
		y0++
	}
	if y0 == d.H {
		return image.Rectangle{}
	}
	y1 := d.H - 1
	for !hasInk(row(y1)) {
		y1--
	}
	x0, x1 := d.W, -1 // inked columns found so far: x0..x1
	for y := y0; y <= y1; y++ {
		r := row(y)
		for x := range x0 {
			if r[x] > InkThreshold {
				x0 = x
				break
			}
		}
		for x := d.W - 1; x > x1; x-- {
			if r[x] > InkThreshold {
				x1 = x
				break
			}
		}
	}
	return image.Rect(x0, y0, x1+1, y1+1)
}

// hasInk reports whether any byte of row is above InkThreshold. It tests
// eight bytes at once: adding 127-InkThreshold to a byte's low seven bits
// sets its top bit exactly when the byte is above the threshold or the top
// bit was set already, and cannot carry into the next byte.
func hasInk(row []uint8) bool {
	const (
		low7 = 0x7f7f7f7f7f7f7f7f
		top  = 0x8080808080808080
		add  = (0x7f - InkThreshold) * 0x0101010101010101
	)
	for len(row) >= 8 {
		v := binary.LittleEndian.Uint64(row)
		if ((v&low7)+add|v)&top != 0 {
			return true
		}
		row = row[8:]
	}
	for _, v := range row {
		if v > InkThreshold {
			return true
		}
	}
	return false
}

// scaledShort returns the length of the shorter side once the longer one
// is scaled to mnistBox: round(20*short/long), at least 1.
func scaledShort(short, long int) int {
	return max(1, int(math.Round(float64(mnistBox*short)/float64(long))))
}

// span is one output pixel's share of the input along an axis: the input
// pixels first, first+1, ... contribute with the weights w, which sum to 1.
type span struct {
	first int
	w     []float64
}

// boxSpans returns, for each of n output pixels along an axis of src input
// pixels, the input pixels it covers and their weights. Output pixel j
// covers the input interval [j*src/n, (j+1)*src/n); an input pixel's weight
// is the length of its overlap with that interval divided by the
// interval's length. This is area averaging when down-scaling and, when
// up-scaling, sampling with fractional coverage where an output pixel
// straddles two input pixels. The input pixels strictly inside an interval
// are wholly covered and so all have the same weight, n/src; resample
// relies on that.
func boxSpans(src, n int) []span {
	spans := make([]span, n)
	// Each interval is src/n long, so it touches at most ceil(src/n)+1
	// input pixels; one backing array holds all the weights.
	buf := make([]float64, 0, n*((src+n-1)/n+1))
	scale := float64(n) / float64(src)
	for j := range spans {
		a := float64(j*src) / float64(n)
		b := float64((j+1)*src) / float64(n)
		first := int(math.Floor(a))
		last := min(int(math.Ceil(b)), src) // exclusive
		start := len(buf)
		for x := first; x < last; x++ {
			overlap := math.Min(b, float64(x+1)) - math.Max(a, float64(x))
			buf = append(buf, max(overlap, 0)*scale)
		}
		spans[j] = span{first: first, w: buf[start:len(buf):len(buf)]}
	}
	return spans
}

// resample area-averages the r part of d into a w x h image of values in
// [0,1]. It filters rows first, down to w columns, then columns, so the
// work is proportional to the size of r.
func resample(d Drawing, r image.Rectangle, w, h int) []float32 {
	xs := boxSpans(r.Dx(), w)
	ys := boxSpans(r.Dy(), h)

	// Horizontal pass: each row of r shrinks (or grows) to w values.
	tmp := make([]float64, r.Dy()*w)
	for y := range r.Dy() {
		row := d.Pixels[(r.Min.Y+y)*d.W+r.Min.X : (r.Min.Y+y)*d.W+r.Max.X]
		out := tmp[y*w : (y+1)*w]
		for j, s := range xs {
			// Pixels strictly inside the span are wholly covered, so
			// they share one weight: sum them as integers first. The
			// explicit conversions forbid fused multiply-adds, see
			// Preprocess.
			n := len(s.w)
			src := row[s.first : s.first+n]
			acc := float64(s.w[0] * float64(src[0]))
			if n > 1 {
				acc += float64(s.w[n-1] * float64(src[n-1]))
			}
			if n > 2 {
				sum := 0
				for _, v := range src[1 : n-1] {
					sum += int(v)
				}
				acc += float64(s.w[1] * float64(sum))
			}
			out[j] = acc
		}
	}

	// Vertical pass, and the conversion from 0..255 to [0,1].
	scaled := make([]float32, w*h)
	var acc [mnistBox]float64 // w <= mnistBox
	for i, s := range ys {
		clear(acc[:w])
		for k, wt := range s.w {
			in := tmp[(s.first+k)*w : (s.first+k+1)*w]
			for j, v := range in {
				acc[j] += float64(wt * v)
			}
		}
		out := scaled[i*w : (i+1)*w]
		for j := range out {
			out[j] = clamp01(float32(acc[j] / 255))
		}
	}
	return scaled
}

func clamp01(v float32) float32 {
	return min(max(v, 0), 1)
}

func clampInt(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
