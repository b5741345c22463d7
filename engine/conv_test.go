package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// convRef is a plain convolution: the textbook loops over the definition,
// accumulating in float64, with no im2col, padding copy or tiling. It
// returns the forward output (bias added, ReLU applied if relu) and, for an
// upstream gradient dy already masked by the ReLU, the gradients of the
// weights, the bias and the input. Each value comes with its magnitude
// Σ|term|, from which the tests derive float32 tolerances.
type convRef struct {
	y, yMag   []float64
	dw, dwMag []float64
	db, dbMag []float64
	dx, dxMag []float64
}

func convReference(l *Conv2D, x, w, b, dy []float32, n int) convRef {
	g := l.geom
	var r convRef
	ySize, xSize := g.oh*g.ow*g.oc, g.h*g.w*g.c
	r.y, r.yMag = make([]float64, n*ySize), make([]float64, n*ySize)
	r.dw, r.dwMag = make([]float64, len(w)), make([]float64, len(w))
	r.db, r.dbMag = make([]float64, g.oc), make([]float64, g.oc)
	r.dx, r.dxMag = make([]float64, n*xSize), make([]float64, n*xSize)
	for i := 0; i < n; i++ {
		for oy := 0; oy < g.oh; oy++ {
			for ox := 0; ox < g.ow; ox++ {
				for o := 0; o < g.oc; o++ {
					yi := i*ySize + (oy*g.ow+ox)*g.oc + o
					s, mag := float64(b[o]), math.Abs(float64(b[o]))
					gr := float64(dy[yi])
					r.db[o] += gr
					r.dbMag[o] += math.Abs(gr)
					for ky := 0; ky < g.kh; ky++ {
						for kx := 0; kx < g.kw; kx++ {
							iy, ix := oy*g.s-g.padTop+ky, ox*g.s-g.padLft+kx
							if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w {
								continue // zero padding
							}
							for c := 0; c < g.c; c++ {
								xi := i*xSize + (iy*g.w+ix)*g.c + c
								wi := ((ky*g.kw+kx)*g.c+c)*g.oc + o
								s += float64(x[xi]) * float64(w[wi])
								mag += math.Abs(float64(x[xi]) * float64(w[wi]))
								r.dw[wi] += float64(x[xi]) * gr
								r.dwMag[wi] += math.Abs(float64(x[xi]) * gr)
								r.dx[xi] += float64(w[wi]) * gr
								r.dxMag[xi] += math.Abs(float64(w[wi]) * gr)
							}
						}
					}
					if l.relu {
						s = max(s, 0)
					}
					r.y[yi], r.yMag[yi] = s, mag
				}
			}
		}
	}
	return r
}

// convTol is the float32 tolerance for a value of magnitude mag summed over
// depth terms: twice the worst-case bound of a float32 sum in any order,
// as in gemmRef, plus a little for the final additions.
func convTol(depth int, mag float64) float64 { return float64(depth+8)*0x1p-23*mag + 1e-30 }

func checkClose(t *testing.T, what string, got []float32, want, mag []float64, depth int) {
	t.Helper()
	bad := 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= convTol(depth, mag[i])) {
			t.Errorf("%s[%d] = %v, want %v (tolerance %.3g)", what, i, got[i], want[i], convTol(depth, mag[i]))
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}

type convCase struct {
	n, h, w, c, oc, kh, kw, stride int
	same, relu                     bool
}

func (tc convCase) String() string {
	pad := "valid"
	if tc.same {
		pad = "same"
	}
	return fmt.Sprintf("n%d_%dx%dx%d_oc%d_k%dx%d_s%d_%s_relu%v", tc.n, tc.h, tc.w, tc.c, tc.oc, tc.kh, tc.kw, tc.stride, pad, tc.relu)
}

// check runs the layer's fast paths with kernel family kern and compares
// forward output, weight, bias and input gradients with convReference.
func (tc convCase) check(t *testing.T, kern *gemmKernel, rng *rand.Rand) {
	t.Helper()
	l := newConv2D("c", Shape{tc.h, tc.w, tc.c}, tc.oc, tc.kh, tc.kw, tc.stride, tc.same, tc.relu)
	l.kern = kern
	randomize(l.weight, rng)
	randomize(l.bias, rng)
	x := NewTensor(tc.n, l.in)
	randomize(x.Data, rng)
	y := l.Forward(x, true)
	// The upstream gradient, masked where the layer's own output is zero:
	// the mask is the layer's, so that rounding near a kink cannot make
	// the two sides disagree about it.
	dy := NewTensor(tc.n, l.out)
	randomize(dy.Data, rng)
	masked := append([]float32(nil), dy.Data...)
	if tc.relu {
		for i, v := range y.Data {
			if v <= 0 {
				masked[i] = 0
			}
		}
	}
	ref := convReference(l, x.Data, l.weight, l.bias, masked, tc.n)
	k := tc.kh * tc.kw * tc.c
	checkClose(t, "y", y.Data, ref.y, ref.yMag, k)

	// Backward accumulates into the gradients: start from known values.
	randomize(l.dWeight, rng)
	randomize(l.dBias, rng)
	dw0, db0 := append([]float32(nil), l.dWeight...), append([]float32(nil), l.dBias...)
	for i := range ref.dw {
		ref.dw[i] += float64(dw0[i])
		ref.dwMag[i] += math.Abs(float64(dw0[i]))
	}
	for i := range ref.db {
		ref.db[i] += float64(db0[i])
		ref.dbMag[i] += math.Abs(float64(db0[i]))
	}
	dx := l.Backward(dy)
	pixels := tc.n * l.out.H * l.out.W
	checkClose(t, "dW", l.dWeight, ref.dw, ref.dwMag, pixels)
	checkClose(t, "db", l.dBias, ref.db, ref.dbMag, pixels)
	checkClose(t, "dx", dx.Data, ref.dx, ref.dxMag, tc.kh*tc.kw*tc.oc)
}

// TestConvMatchesReference runs the implicit-GEMM convolution (forward,
// weight gradient, input gradient, fused bias and ReLU) on every kernel
// family against the plain loops of convReference: random shapes with odd
// sizes, channel counts around the kernels' panel widths, strides,
// padding, kernels larger than the input's padding, and batches that leave
// backward parts empty.
func TestConvMatchesReference(t *testing.T) {
	fixed := []convCase{
		{n: 2, h: 28, w: 28, c: 1, oc: 32, kh: 3, kw: 3, stride: 1, relu: true},               // keras-mnist conv1
		{n: 2, h: 26, w: 26, c: 32, oc: 64, kh: 3, kw: 3, stride: 1, relu: true},              // keras-mnist conv2
		{n: 3, h: 28, w: 28, c: 1, oc: 6, kh: 5, kw: 5, stride: 1, same: true, relu: true},    // lenet5 conv1
		{n: 1, h: 14, w: 14, c: 6, oc: 16, kh: 5, kw: 5, stride: 1, relu: true},               // lenet5 conv2
		{n: 9, h: 7, w: 9, c: 33, oc: 65, kh: 3, kw: 2, stride: 2, same: true},                // panels of 32 + 1
		{n: 1, h: 1, w: 1, c: 3, oc: 2, kh: 1, kw: 1, stride: 1},                              // 1x1 everything
		{n: 2, h: 3, w: 2, c: 2, oc: 3, kh: 5, kw: 4, stride: 1, same: true, relu: true},      // kernel larger than the image
		{n: 2, h: 11, w: 13, c: 5, oc: 7, kh: 4, kw: 4, stride: 3, same: true, relu: true},    // even kernel, odd padding
		{n: 17, h: 5, w: 30, c: 2, oc: 40, kh: 2, kw: 3, stride: 1, same: false, relu: false}, // long rows: several tiles
	}
	for _, kern := range gemmKernels() {
		t.Run(kern.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			cases := append([]convCase(nil), fixed...)
			for len(cases) < len(fixed)+30 {
				tc := convCase{
					n: 1 + rng.IntN(4), h: 1 + rng.IntN(14), w: 1 + rng.IntN(14),
					c: 1 + rng.IntN(40), oc: 1 + rng.IntN(70),
					kh: 1 + rng.IntN(5), kw: 1 + rng.IntN(5), stride: 1 + rng.IntN(3),
					same: rng.IntN(2) == 0, relu: rng.IntN(2) == 0,
				}
				if !tc.same && (tc.kh > tc.h || tc.kw > tc.w) {
					continue // no output
				}
				cases = append(cases, tc)
			}
			for _, tc := range cases {
				t.Run(tc.String(), func(t *testing.T) { tc.check(t, kern, rng) })
			}
		})
	}
}

// TestConvPredictBands checks that a single image, cut into bands of output
// rows over the CPUs, gives the bits of a batch computation.
func TestConvPredictBands(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	l := newConv2D("c", Shape{26, 26, 32}, 64, 3, 3, 1, false, true)
	randomize(l.weight, rng)
	randomize(l.bias, rng)
	x := NewTensor(20, l.in)
	randomize(x.Data, rng)
	batch := append([]float32(nil), l.Forward(x, false).Data...)
	for i := 0; i < x.N; i += 7 {
		one := &Tensor{N: 1, Shape: l.in, Data: x.Example(i)}
		got := l.Forward(one, false).Data
		for j, v := range got {
			if math.Float32bits(v) != math.Float32bits(batch[i*len(got)+j]) {
				t.Fatalf("image %d value %d: %v alone, %v in the batch", i, j, v, batch[i*len(got)+j])
			}
		}
	}
}
