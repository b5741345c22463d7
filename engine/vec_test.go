package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// vecData returns n values in [-1, 1) with the awkward ones sprinkled in:
// zeros of both signs, NaN, infinities, and repeats (ties for max).
func vecData(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch rng.IntN(12) {
		case 0:
			v[i] = 0
		case 1:
			v[i] = float32(math.Copysign(0, -1))
		case 2:
			v[i] = float32(math.NaN())
		case 3:
			v[i] = float32(math.Inf(2*rng.IntN(2) - 1))
		case 4:
			if i > 0 {
				v[i] = v[rng.IntN(i)]
			}
		default:
			v[i] = 2*rng.Float32() - 1
		}
	}
	return v
}

// sameBits compares two results bit for bit, except that any NaN matches
// any NaN (Go does not specify which NaN max returns).
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if g != g && w != w {
			continue
		}
		if math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("%s[%d] = %v (%#x), want %v (%#x)", what, i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
}

// TestVecKernels checks the vector kernels (assembly where the CPU has it)
// against their Go references, bit for bit, on lengths around the 16-lane
// chunks and on NaN, signed zeros and ties.
func TestVecKernels(t *testing.T) {
	if !vecAVX512 {
		t.Log("no AVX-512: the Go versions are the kernels")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 64, 100, 1000} {
		g, y := vecData(rng, n), vecData(rng, n)
		got, want := make([]float32, n), make([]float32, n)
		reluMaskTo(got, g, y)
		reluMaskToGo(want, g, y)
		sameBits(t, "reluMaskTo", got, want)
		for i, v := range y {
			if !(v > 0) && want[i] != 0 {
				t.Fatalf("reluMaskTo passes the gradient where y = %v", v)
			}
		}

		p, grad := vecData(rng, n), vecData(rng, n)
		for i := range grad { // finite gradients, accumulators >= 0
			if grad[i] != grad[i] || math.IsInf(float64(grad[i]), 0) {
				grad[i] = 0.5
			}
		}
		a, d := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], d[i] = rng.Float32(), rng.Float32()*1e-3
		}
		p2, a2, d2 := append([]float32(nil), p...), append([]float32(nil), a...), append([]float32(nil), d...)
		for step := 0; step < 3; step++ {
			adadeltaUpdate(p, grad, a, d, 0.95, 1, 1e-7)
			adadeltaUpdateGo(p2, grad, a2, d2, 0.95, 1, 1e-7)
		}
		sameBits(t, "adadelta p", p, p2)
		sameBits(t, "adadelta a", a, a2)
		sameBits(t, "adadelta d", d, d2)
	}
	for _, tc := range [][2]int{{0, 1}, {0, 32}, {1, 31}, {3, 64}, {2, 100}, {5, 1000}, {4, 4096}} {
		first, n := tc[0], tc[1]
		src := vecData(rng, n)
		got, want := make([]float32, n), make([]float32, n)
		dropoutMask(got, src, 99, first, 0.3)
		dropoutMaskGo(want, src, 99, first, 0.3)
		sameBits(t, "dropoutMask", got, want)
	}
	for _, c := range []int{1, 3, 16, 17, 32, 64, 70} {
		for _, size := range []int{1, 2, 3} {
			for _, extra := range []int{0, 5} { // rows wider than the window
				rowStride := size*c + extra*c
				x := vecData(rng, (size-1)*rowStride+size*c)
				got, want := make([]float32, c), make([]float32, c)
				poolMax(got, x, c, size, rowStride)
				poolMaxGo(want, x, c, size, rowStride)
				sameBits(t, "poolMax", got, want)

				g := vecData(rng, c)
				for _, acc := range []bool{false, true} {
					dx1, dx2 := vecData(rng, len(x)), make([]float32, len(x))
					for i := range dx1 { // no NaN: additions must compare exactly
						if dx1[i] != dx1[i] {
							dx1[i] = 1
						}
					}
					copy(dx2, dx1)
					poolRoute(dx1, x, want, g, c, size, rowStride, acc)
					poolRouteGo(dx2, x, want, g, c, size, rowStride, acc)
					sameBits(t, "poolRoute", dx1, dx2)
				}
			}
		}
	}
}

// poolRef is max pooling by its definition, with the gradient going to
// the first maximum of each window (ties to the earlier pixel, any NaN
// being the maximum).
func poolRef(l *MaxPool2D, x, dy []float32, n int) (y, dx []float32) {
	in, out := l.in, l.out
	y, dx = make([]float32, n*out.Size()), make([]float32, n*in.Size())
	for i := 0; i < n; i++ {
		for oy := 0; oy < out.H; oy++ {
			for ox := 0; ox < out.W; ox++ {
				for c := 0; c < in.C; c++ {
					best := -1
					for py := 0; py < l.size; py++ {
						for px := 0; px < l.size; px++ {
							at := i*in.Size() + ((oy*l.stride+py)*in.W+ox*l.stride+px)*in.C + c
							if best < 0 || x[at] > x[best] || (x[at] != x[at] && x[best] == x[best]) {
								best = at
							}
						}
					}
					o := i*out.Size() + (oy*out.W+ox)*in.C + c
					y[o] = x[best]
					dx[best] += dy[o]
				}
			}
		}
	}
	return y, dx
}

func TestMaxPoolMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, tc := range []struct {
		in           Shape
		size, stride int
	}{
		{Shape{24, 24, 64}, 2, 2}, {Shape{7, 9, 3}, 2, 2}, {Shape{8, 8, 17}, 3, 2},
		{Shape{9, 7, 33}, 3, 3}, {Shape{5, 6, 1}, 2, 1}, {Shape{10, 10, 16}, 2, 3},
	} {
		l := newMaxPool2D("p", tc.in, tc.size, tc.stride)
		x := NewTensor(3, tc.in)
		for i := range x.Data {
			// Few distinct values: many ties.
			x.Data[i] = float32(rng.IntN(5)) - 2
		}
		dy := NewTensor(3, l.out)
		randomize(dy.Data, rng)
		wantY, wantDx := poolRef(l, x.Data, dy.Data, 3)
		sameBits(t, "y", l.Forward(x, true).Data, wantY)
		sameBits(t, "dx", l.Backward(dy).Data, wantDx)
	}
}

// TestDropoutMasks checks the counter-based masks: the rate, that any split
// of the batch draws the same mask, that Backward applies Forward's mask,
// and that a reseeded layer repeats itself.
func TestDropoutMasks(t *testing.T) {
	const n = 1 << 18
	x := NewTensor(1, Shape{1, 1, n})
	for i := range x.Data {
		x.Data[i] = 1
	}
	for _, rate := range []float32{0.25, 0.5, 0.1} {
		l := &Dropout{name: "d", shape: x.Shape, rate: rate}
		l.reseed(1, 2)
		y := l.Forward(x, true)
		dropped := 0
		for _, v := range y.Data {
			switch v {
			case 0:
				dropped++
			case 1 / (1 - rate):
			default:
				t.Fatalf("rate %v: value %v", rate, v)
			}
		}
		// Binomial: the standard deviation of the fraction is < 1e-3.
		if f := float64(dropped) / n; math.Abs(f-float64(rate)) > 5e-3 {
			t.Errorf("rate %v: dropped %.4f", rate, f)
		}
		// Any split of the values draws the same mask.
		split := make([]float32, n)
		for lo := 0; lo < n; {
			hi := min(n, lo+1+rand.IntN(1000))
			dropoutMask(split[lo:hi], x.Data[lo:hi], l.key, lo, rate)
			lo = hi
		}
		sameBits(t, "split", split, y.Data)
		// Backward multiplies by the same mask.
		dy := &Tensor{N: 1, Shape: x.Shape, Data: append([]float32(nil), x.Data...)}
		sameBits(t, "backward", l.Backward(dy).Data, y.Data)
		// A reseeded layer repeats; the next batch differs.
		first := append([]float32(nil), y.Data...)
		l.reseed(1, 2)
		sameBits(t, "reseeded", l.Forward(x, true).Data, first)
		same := 0
		for i, v := range l.Forward(x, true).Data {
			if v == first[i] {
				same++
			}
		}
		if same == n {
			t.Errorf("rate %v: two batches drew the same mask", rate)
		}
	}
}
