package engine

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cnnviz/engine/mnist"
)

// The flag "update" belongs to main_test.go and rewrites other golden files;
// this one rewrites only testdata/preprocess.
var updatePreprocess = flag.Bool("update-preprocess", false, "rewrite the golden PNGs in testdata/preprocess/")

// blank returns an empty w x h drawing.
func blank(w, h int) Drawing {
	return Drawing{W: w, H: h, Pixels: make([]uint8, w*h)}
}

// fill sets the pixels of r in d to v.
func fill(d Drawing, r image.Rectangle, v uint8) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			d.Pixels[y*d.W+x] = v
		}
	}
}

// stroke draws a polyline through pts with a round pen of radius r: full
// ink inside the pen and 128 on a one-pixel rim, like a canvas's
// anti-aliased line. It uses integers only, so the drawings, and the golden
// files made from them, are the same on every platform.
func stroke(d Drawing, r int, pts ...image.Point) {
	dab := func(c image.Point) {
		for y := max(c.Y-r-1, 0); y <= min(c.Y+r+1, d.H-1); y++ {
			for x := max(c.X-r-1, 0); x <= min(c.X+r+1, d.W-1); x++ {
				dd := (x-c.X)*(x-c.X) + (y-c.Y)*(y-c.Y)
				v := uint8(0)
				switch {
				case dd <= r*r:
					v = 255
				case dd <= (r+1)*(r+1):
					v = 128
				}
				d.Pixels[y*d.W+x] = max(d.Pixels[y*d.W+x], v)
			}
		}
	}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		n := max(abs(b.X-a.X), abs(b.Y-a.Y), 1)
		for t := 0; t <= n; t++ {
			dab(image.Pt(a.X+(b.X-a.X)*t/n, a.Y+(b.Y-a.Y)*t/n))
		}
	}
}

// ring draws the full-ink ring between the ellipse of semi-axes (ia, ib)
// and that of semi-axes (oa, ob), both centred on c, with integers only.
func ring(d Drawing, c image.Point, ia, ib, oa, ob int) {
	for y := range d.H {
		for x := range d.W {
			dx2, dy2 := (x-c.X)*(x-c.X), (y-c.Y)*(y-c.Y)
			inOuter := dx2*ob*ob+dy2*oa*oa <= oa*oa*ob*ob
			inInner := dx2*ib*ib+dy2*ia*ia <= ia*ia*ib*ib
			if inOuter && !inInner {
				d.Pixels[y*d.W+x] = 255
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// seven is a 280x280 canvas "7" drawn with a thick pen, as from a browser.
// Its ink is heavy at the top, so Preprocess clamps its shift: it ends up
// against the bottom of the field.
func seven() Drawing {
	d := blank(280, 280)
	stroke(d, 10, image.Pt(70, 60), image.Pt(210, 60), image.Pt(120, 230))
	return d
}

// smallZero is a "0" 9 pixels wide and 13 tall on a 32x32 canvas, so that
// Preprocess has to scale it up.
func smallZero() Drawing {
	d := blank(32, 32)
	ring(d, image.Pt(12, 17), 2, 4, 4, 6)
	return d
}

// centreOfMass returns the intensity-weighted centre of a 28x28 image, in
// the coordinates where pixel (x, y) is centred on (x, y).
func centreOfMass(img []float32) (cx, cy, mass float64) {
	for i, v := range img {
		mass += float64(v)
		cx += float64(v) * float64(i%28)
		cy += float64(v) * float64(i/28)
	}
	return cx / mass, cy / mass, mass
}

func sum32(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s
}

// checkInvariants checks what must hold for every non-empty result.
func checkInvariants(t *testing.T, d Drawing, p *Preprocessed) {
	t.Helper()
	if p.Empty {
		t.Fatal("Empty set for a drawing with ink")
	}
	if !p.BBox.In(image.Rect(0, 0, d.W, d.H)) {
		t.Errorf("BBox %v outside the %dx%d drawing", p.BBox, d.W, d.H)
	}
	if max(p.ScaledW, p.ScaledH) != 20 || min(p.ScaledW, p.ScaledH) < 1 {
		t.Errorf("scaled to %dx%d, want the longer side 20", p.ScaledW, p.ScaledH)
	}
	if len(p.Scaled) != p.ScaledW*p.ScaledH {
		t.Fatalf("len(Scaled) = %d, want %d", len(p.Scaled), p.ScaledW*p.ScaledH)
	}
	if !image.Rect(0, 0, p.ScaledW, p.ScaledH).Add(p.Shift).In(image.Rect(0, 0, 28, 28)) {
		t.Errorf("Shift %v puts the %dx%d box outside the field", p.Shift, p.ScaledW, p.ScaledH)
	}
	for i, v := range p.Image {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("Image[%d] = %v, outside [0,1]", i, v)
		}
	}
	for i, v := range p.Scaled {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("Scaled[%d] = %v, outside [0,1]", i, v)
		}
	}
	// Placing the digit neither loses nor adds ink.
	if s, i := sum32(p.Scaled), sum32(p.Image[:]); math.Abs(s-i) > 1e-4*s {
		t.Errorf("ink of Scaled %.4f, of Image %.4f", s, i)
	}
}

func TestPreprocessInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Drawing
		want string // in the error message
	}{
		{"zero width", Drawing{W: 0, H: 28}, "width 0 is outside 8..1024"},
		{"zero height", Drawing{W: 28, H: 0}, "height 0 is outside 8..1024"},
		{"zero size", Drawing{}, "width 0"},
		{"negative width", Drawing{W: -28, H: 28}, "width -28"},
		{"too narrow", Drawing{W: 7, H: 28, Pixels: make([]uint8, 7*28)}, "width 7"},
		{"too wide", Drawing{W: 1025, H: 28, Pixels: make([]uint8, 1025*28)}, "width 1025"},
		{"too tall", Drawing{W: 28, H: 1025, Pixels: make([]uint8, 1025*28)}, "height 1025"},
		// W*H would overflow; the sizes are checked before they are multiplied.
		{"huge", Drawing{W: math.MaxInt, H: math.MaxInt}, fmt.Sprintf("width %d is outside", math.MaxInt)},
		{"huge height", Drawing{W: 1024, H: math.MaxInt}, fmt.Sprintf("height %d is outside", math.MaxInt)},
		{"no pixels", Drawing{W: 28, H: 28}, "0 pixels for a 28x28 drawing, want 784"},
		{"too few pixels", Drawing{W: 28, H: 28, Pixels: make([]uint8, 783)}, "783 pixels"},
		{"too many pixels", Drawing{W: 280, H: 280, Pixels: make([]uint8, 280*281)}, "78680 pixels for a 280x280 drawing, want 78400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Preprocess(tc.d)
			if err == nil {
				t.Fatalf("no error, got %+v", p)
			}
			if p != nil {
				t.Errorf("result %+v with the error", p)
			}
			if !errors.Is(err, ErrBadDrawing) {
				t.Errorf("error %q does not wrap ErrBadDrawing", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestPreprocessEmpty(t *testing.T) {
	faint := blank(280, 280)
	for i := range faint.Pixels {
		faint.Pixels[i] = uint8(i % (InkThreshold + 1)) // 0..16: noise, not ink
	}
	for name, d := range map[string]Drawing{
		"blank":       blank(280, 280),
		"smallest":    blank(8, 8),
		"faint noise": faint,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Preprocess(d)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Empty || !p.BBox.Empty() || p.Scaled != nil || p.Shift != (image.Point{}) {
				t.Errorf("got Empty=%v BBox=%v Scaled=%v Shift=%v, want an empty result",
					p.Empty, p.BBox, p.Scaled, p.Shift)
			}
			if p.Image != [28 * 28]float32{} {
				t.Error("Image is not all zeros")
			}
			if !bytes.Equal(p.Bytes(), make([]uint8, 28*28)) {
				t.Error("Bytes is not all zeros")
			}
		})
	}
}

// TestPreprocessRectangles checks sizes, centring and ink on filled
// rectangles, whose exact results are known.
func TestPreprocessRectangles(t *testing.T) {
	for _, tc := range []struct {
		name         string
		w, h         int             // canvas
		rect         image.Rectangle // filled with full ink
		wantW, wantH int
	}{
		// The brief's case: 20x120 off-centre; 3 = round(20*20/120).
		{"vertical stroke", 280, 280, image.Rect(30, 140, 50, 260), 3, 20},
		{"horizontal stroke", 280, 280, image.Rect(150, 10, 270, 30), 20, 3},
		{"square", 280, 280, image.Rect(0, 0, 50, 50), 20, 20},
		{"whole canvas", 64, 64, image.Rect(0, 0, 64, 64), 20, 20},
		{"single pixel", 280, 280, image.Rect(279, 0, 280, 1), 20, 20},
		{"hairline", 280, 280, image.Rect(10, 10, 11, 270), 1, 20},
		// round(20*6/13) = round(9.23) = 9: 6x13 scaled up to 9x20.
		{"tiny, scaled up", 64, 48, image.Rect(40, 5, 46, 18), 9, 20},
		{"non-square canvas", 1024, 8, image.Rect(100, 2, 900, 6), 20, 1},
		{"canvas corner", 1024, 1024, image.Rect(1000, 1000, 1024, 1024), 20, 20},
		{"28x28 canvas", 28, 28, image.Rect(2, 3, 12, 27), 8, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := blank(tc.w, tc.h)
			fill(d, tc.rect, 255)
			orig := bytes.Clone(d.Pixels)
			p, err := Preprocess(d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Pixels, orig) {
				t.Error("Preprocess modified the drawing")
			}
			checkInvariants(t, d, p)
			if p.BBox != tc.rect {
				t.Errorf("BBox = %v, want %v", p.BBox, tc.rect)
			}
			if p.ScaledW != tc.wantW || p.ScaledH != tc.wantH {
				t.Fatalf("scaled to %dx%d, want %dx%d", p.ScaledW, p.ScaledH, tc.wantW, tc.wantH)
			}
			// A uniform rectangle stays uniform: every scaled pixel is
			// covered by full ink only.
			for i, v := range p.Scaled {
				if math.Abs(float64(v)-1) > 1e-6 {
					t.Fatalf("Scaled[%d] = %v, want 1", i, v)
				}
			}
			// Area averaging preserves ink up to the change of scale:
			// each scaled pixel stands for sx*sy drawing pixels.
			sx := float64(tc.rect.Dx()) / float64(p.ScaledW)
			sy := float64(tc.rect.Dy()) / float64(p.ScaledH)
			drawn := float64(tc.rect.Dx() * tc.rect.Dy())
			_, _, mass := centreOfMass(p.Image[:])
			if want := drawn / (sx * sy); math.Abs(mass-want) > 1e-4*want {
				t.Errorf("ink %.4f, want %.4f", mass, want)
			}
			cx, cy, _ := centreOfMass(p.Image[:])
			if math.Abs(cx-14) > 0.5 || math.Abs(cy-14) > 0.5 {
				t.Errorf("centre of mass (%.3f, %.3f), want within 0.5 of (14, 14)", cx, cy)
			}
		})
	}
}

// TestPreprocessAreaAverage checks the grey levels of a down-scale that does
// not divide evenly: a 30x30 checkerboard of 10x10 squares becomes 20x20, so
// each output pixel covers 1.5x1.5 drawing pixels.
func TestPreprocessAreaAverage(t *testing.T) {
	d := blank(40, 40)
	for y := range 30 {
		for x := range 30 {
			if (x/10+y/10)%2 == 0 {
				d.Pixels[(y+5)*40+x+5] = 255
			}
		}
	}
	p, err := Preprocess(d)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d, p)
	// Output pixel j covers [1.5j, 1.5j+1.5). Square edges fall at 10 and
	// 20, inside output pixels 6 (9..10.5) and 13 (19.5..21): two thirds of
	// pixel 6 lie in the first (inked) square, two thirds of pixel 13 in the
	// third (inked) one. Pixel (6, 6) is 2/3*2/3 inked square 0 plus
	// 1/3*1/3 inked square (1, 1).
	at := func(x, y int) float32 { return p.Scaled[y*20+x] }
	for _, c := range []struct {
		x, y int
		want float32
	}{
		{0, 0, 1}, {5, 5, 1}, {7, 0, 0}, {0, 7, 0}, {7, 7, 1},
		{6, 0, 2.0 / 3}, {0, 6, 2.0 / 3}, {13, 0, 2.0 / 3}, {6, 6, 5.0 / 9},
	} {
		if got := at(c.x, c.y); math.Abs(float64(got-c.want)) > 1e-6 {
			t.Errorf("Scaled(%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}

// TestPreprocessUpscale checks fractional coverage when scaling up: a
// 2-pixel-tall drawing of a dark and a light row, 10 wide, becomes 20x4, each
// output row covering half a drawing row.
func TestPreprocessUpscale(t *testing.T) {
	d := blank(16, 8)
	fill(d, image.Rect(3, 3, 13, 4), 255)
	fill(d, image.Rect(3, 4, 13, 5), 51)
	p, err := Preprocess(d)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d, p)
	if p.ScaledW != 20 || p.ScaledH != 4 {
		t.Fatalf("scaled to %dx%d, want 20x4", p.ScaledW, p.ScaledH)
	}
	for y, want := range []float32{1, 1, 0.2, 0.2} {
		for x := range 20 {
			if got := p.Scaled[y*20+x]; math.Abs(float64(got-want)) > 1e-6 {
				t.Fatalf("Scaled(%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
	// A 3x5 block becomes 12x20 (round(20*3/5) = 12): each drawing pixel
	// becomes a 4x4 block.
	d = blank(8, 8)
	fill(d, image.Rect(1, 1, 4, 6), 255)
	d.Pixels[1*8+2] = 0 // a hole in the top row's middle column
	p, err = Preprocess(d)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d, p)
	if p.ScaledW != 12 || p.ScaledH != 20 {
		t.Fatalf("scaled to %dx%d, want 12x20", p.ScaledW, p.ScaledH)
	}
	// Columns scale by 4 exactly (12/3), rows by 4 (20/5): output column
	// 4..7 shows the hole in rows 0..3, and the rest is full.
	for y := range 20 {
		for x := range 12 {
			want := float32(1)
			if y < 4 && x >= 4 && x < 8 {
				want = 0
			}
			if got := p.Scaled[y*12+x]; got != want {
				t.Fatalf("Scaled(%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

// TestPreprocessIgnoresFaintPixels: pixels at or below InkThreshold do not
// stretch the bounding box.
func TestPreprocessIgnoresFaintPixels(t *testing.T) {
	clean := seven()
	noisy := seven()
	for i := 0; i < len(noisy.Pixels); i += 97 {
		if noisy.Pixels[i] == 0 {
			noisy.Pixels[i] = InkThreshold
		}
	}
	pc, err := Preprocess(clean)
	if err != nil {
		t.Fatal(err)
	}
	pn, err := Preprocess(noisy)
	if err != nil {
		t.Fatal(err)
	}
	if pn.BBox != pc.BBox {
		t.Errorf("faint noise moved the bounding box from %v to %v", pc.BBox, pn.BBox)
	}
	// Noise inside the box is ink like any other, so the images may differ
	// a little, but by no more than the noise's level.
	for i := range pc.Image {
		if d := math.Abs(float64(pc.Image[i] - pn.Image[i])); d > InkThreshold/255.0 {
			t.Fatalf("Image[%d] differs by %.3f", i, d)
		}
	}
}

// TestPreprocessClampsShift: a "T" whose ink is nearly all in its top bar has
// its centre of mass about 3 pixels below the top of its box; centring it
// would push the bar 11 pixels down and the stem out of the field, so the
// shift is clamped at 28-20 = 8 and no ink is lost.
func TestPreprocessClampsShift(t *testing.T) {
	d := blank(280, 280)
	fill(d, image.Rect(40, 40, 240, 100), 255)   // bar, 200x60
	fill(d, image.Rect(130, 100, 134, 240), 255) // stem, 4x140, a bit left
	p, err := Preprocess(d)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d, p)
	if p.Shift != image.Pt(5, 8) {
		t.Errorf("Shift = %v, want (5, 8)", p.Shift)
	}
	// The stem's last row, at the bottom of the box, is still there.
	if v := p.Image[27*28+14]; v <= 0 {
		t.Errorf("bottom of the stem lost: Image(14, 27) = %v", v)
	}
	cx, cy, _ := centreOfMass(p.Image[:])
	if math.Abs(cx-14) > 0.5 || cy >= 14 {
		t.Errorf("centre of mass (%.3f, %.3f), want x near 14 and y above 14", cx, cy)
	}
}

// upscale10 enlarges a 28x28 image tenfold with nearest-neighbour sampling,
// the way a digit drawn on a 280x280 canvas compares with MNIST.
func upscale10(img []uint8) Drawing {
	d := blank(280, 280)
	for y := range 280 {
		for x := range 280 {
			d.Pixels[y*280+x] = img[(y/10)*28+x/10]
		}
	}
	return d
}

// meanAbsDiff returns the mean absolute difference between a result and an
// MNIST image, on the [0,1] scale.
func meanAbsDiff(got []float32, want []uint8) float64 {
	var s float64
	for i, v := range want {
		s += math.Abs(float64(got[i]) - float64(v)/255)
	}
	return s / float64(len(want))
}

// TestPreprocessMNIST feeds real MNIST digits, enlarged tenfold, through
// Preprocess: normalising an already normalised digit must give it back.
//
// With InkThreshold 16 the ink box of every digit in the test subset is 20
// pixels on its longer side, so the 200-pixel box of the enlarged digit is
// scaled by exactly 1/10, each output pixel averages one 10x10 block, and
// the scaled digit is the original's box exactly. What can differ:
//   - faint pixels (<= 16) outside the ink box are dropped;
//   - MNIST centred its digits with a centre of mass computed before the
//     pixels were rounded to bytes; ours, from the bytes, can round to a
//     shift one pixel away when the centre lies within a hair of a half
//     pixel.
//
// Measured (amd64): over these 20 digits the mean absolute difference is
// 0.000026 and the largest 0.000185, all from dropped faint pixels; every
// digit lands where MNIST put it (the nearest centre of mass to a rounding
// tie is 0.0125 pixel away from it, far beyond float noise). Over all 1000
// digits of the subset the mean is 0.0001 and a single digit (817, centre
// of mass x = 14.498 in MNIST) lands one pixel off, at 0.084.
//
// Moving one of these 20 digits by a single pixel costs at least 0.049, so
// the bound of 0.02 per digit catches any misplacement (a wrong centring
// convention, rounding or clamp) or blur from wrong scaling, while leaving a
// hundredfold margin over the measured differences. The mean bound of 0.005
// also catches a small error spread over all digits.
func TestPreprocessMNIST(t *testing.T) {
	_, test, err := mnist.Load(filepath.Join("..", "testdata", "mnist"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var total, worst float64
	for i := range n {
		img := test.Image(i)
		d := upscale10(img)
		p, err := Preprocess(d)
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, d, p)
		diff := meanAbsDiff(p.Image[:], img)
		total += diff
		worst = max(worst, diff)
		t.Logf("test image %2d (label %d): mean |diff| %.6f, shift %v, scaled %dx%d",
			i, test.Labels[i], diff, p.Shift, p.ScaledW, p.ScaledH)
		if diff > 0.02 {
			t.Errorf("test image %d: mean absolute difference %.4f > 0.02", i, diff)
		}

		// The 28x28 original itself is normalised the same way, and comes
		// back the same: with a 20-pixel box the scale is exactly 1.
		p28, err := Preprocess(Drawing{W: 28, H: 28, Pixels: img})
		if err != nil {
			t.Fatal(err)
		}
		if d28 := meanAbsDiff(p28.Image[:], img); math.Abs(d28-diff) > 1e-6 {
			t.Errorf("test image %d: 28x28 original gives difference %.4f, the enlarged one %.4f", i, d28, diff)
		}
	}
	t.Logf("over %d digits: mean %.6f, max %.6f", n, total/n, worst)
	if total/n > 0.005 {
		t.Errorf("mean absolute difference over %d digits %.6f > 0.005", n, total/n)
	}
}

// TestPreprocessGolden compares the 28x28 results of two synthetic drawings,
// one scaled down and one scaled up, with PNGs in testdata/preprocess,
// pixel byte for byte. The decoded pixels are compared, not the PNG files,
// whose compressed bytes could change with the Go release. Rewrite them
// with go test ./engine -run PreprocessGolden -update-preprocess, and look
// at them.
func TestPreprocessGolden(t *testing.T) {
	for name, d := range map[string]Drawing{
		"seven-280x280": seven(),
		"zero-32x32":    smallZero(),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Preprocess(d)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, d, p)
			got := p.Bytes()
			path := filepath.Join("testdata", "preprocess", name+".png")
			if *updatePreprocess {
				var buf bytes.Buffer
				if err := png.Encode(&buf, &image.Gray{Pix: got, Stride: 28, Rect: image.Rect(0, 0, 28, 28)}); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatalf("%v (run go test ./engine -run PreprocessGolden -update-preprocess to create it)", err)
			}
			defer f.Close()
			m, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			g, ok := m.(*image.Gray)
			if !ok || g.Rect != image.Rect(0, 0, 28, 28) {
				t.Fatalf("%s: want a 28x28 greyscale PNG, got %T %v", path, m, m.Bounds())
			}
			want := make([]uint8, 0, 28*28)
			for y := range 28 {
				want = append(want, g.Pix[y*g.Stride:y*g.Stride+28]...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the result:\ngot:\n%swant:\n%s", path, ascii(got), ascii(want))
			}
		})
	}
}

// ascii renders a 28x28 image in text, for failure messages.
func ascii(pix []uint8) string {
	const ramp = " .:-=+*#%@"
	var b strings.Builder
	for y := range 28 {
		for _, v := range pix[y*28 : (y+1)*28] {
			b.WriteByte(ramp[int(v)*len(ramp)/256])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestPreprocessBytes(t *testing.T) {
	var p Preprocessed
	p.Image[0], p.Image[1], p.Image[2], p.Image[3] = 1, 0.5, 1.0/255, 0.499/255
	got := p.Bytes()
	if want := []uint8{255, 128, 1, 0}; !bytes.Equal(got[:4], want) {
		t.Errorf("Bytes()[:4] = %v, want %v", got[:4], want)
	}
	if len(got) != 28*28 {
		t.Errorf("len(Bytes()) = %d, want 784", len(got))
	}
}

// naiveBBox is the bounding box of the pixels above InkThreshold, the slow
// and obvious way.
func naiveBBox(d Drawing) image.Rectangle {
	var r image.Rectangle
	for y := range d.H {
		for x := range d.W {
			if d.Pixels[y*d.W+x] > InkThreshold {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// TestPreprocessHasInk checks the eight-bytes-at-a-time ink test on every
// byte value at every position of rows with and without a tail.
func TestPreprocessHasInk(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 16, 21} {
		for pos := range n {
			for v := range 256 {
				row := make([]uint8, n)
				for i := range row {
					row[i] = uint8(i * 5 % (InkThreshold + 1)) // faint background
				}
				row[pos] = uint8(v)
				if got, want := hasInk(row), v > InkThreshold; got != want {
					t.Fatalf("hasInk with %d at %d of %d bytes = %v, want %v", v, pos, n, got, want)
				}
			}
		}
	}
}

// FuzzPreprocess checks the invariants on arbitrary drawings; its seeds run
// with the ordinary tests.
func FuzzPreprocess(f *testing.F) {
	f.Add(uint16(8), uint16(8), []byte{255})
	f.Add(uint16(28), uint16(9), []byte{0, 0, 17, 200, 16, 255, 3})
	f.Add(uint16(300), uint16(40), bytes.Repeat([]byte{0, 0, 0, 0, 90}, 50))
	f.Add(uint16(1024), uint16(8), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, w, h uint16, seed []byte) {
		d := Drawing{W: int(w), H: int(h)}
		if d.W < DrawingMinSize || d.W > DrawingMaxSize || d.H < DrawingMinSize || d.H > DrawingMaxSize {
			if _, err := Preprocess(d); err == nil {
				t.Fatalf("no error for %dx%d", w, h)
			}
			return
		}
		// Tile the seed bytes over the canvas, sparsely so that the ink
		// has a shape.
		d.Pixels = make([]uint8, d.W*d.H)
		for i, v := range seed {
			d.Pixels[(i*7919)%len(d.Pixels)] = v
		}
		p, err := Preprocess(d)
		if err != nil {
			t.Fatal(err)
		}
		ink := false
		for _, v := range d.Pixels {
			ink = ink || v > InkThreshold
		}
		if p.Empty == ink {
			t.Fatalf("Empty = %v for a drawing with ink %v", p.Empty, ink)
		}
		if ink {
			checkInvariants(t, d, p)
		}
		if want := naiveBBox(d); p.BBox != want {
			t.Fatalf("BBox = %v, want %v", p.BBox, want)
		}
	})
}

// BenchmarkPreprocess normalises a 280x280 canvas drawing, the size of the
// UI's canvas.
func BenchmarkPreprocess(b *testing.B) {
	d := seven()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preprocess(d); err != nil {
			b.Fatal(err)
		}
	}
}
