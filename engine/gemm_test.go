package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// gemmRef is the textbook triple loop, accumulating in float64. It also
// returns, per element of C, the error bound the float32 kernels must meet.
//
// A float32 dot product of length k summed in any order is within
// γ_k·Σ|a_ip·b_pj| of the exact value (γ_k ≈ k·u, u = 2⁻²⁴ the unit
// roundoff), and the alpha/beta update adds a few more roundings relative to
// |alpha|·Σ|a||b| + |beta·c|. So the tolerance is (k+4)·2⁻²³ times that
// magnitude: twice the worst-case bound, which random data never gets near,
// while a wrong index or a dropped term is off by a whole product.
//
// The epilogue (bias, ReLU) adds |bias| to the magnitude and is exact
// otherwise.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi gemmEpilogue) (want, tol []float64) {
	want, tol = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				ia, ib := i*lda+p, p*ldb+j
				if transA {
					ia = p*lda + i
				}
				if transB {
					ib = j*ldb + p
				}
				av, bv := a[ia], b[ib]
				s += float64(av) * float64(bv)
				abs += math.Abs(float64(av) * float64(bv))
			}
			w := float64(alpha) * s
			mag := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				w += float64(beta) * float64(c[i*ldc+j])
				mag += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			if epi.bias != nil {
				w += float64(epi.bias[j])
				mag += math.Abs(float64(epi.bias[j]))
			}
			if epi.relu {
				w = max(w, 0)
			}
			want[i*n+j] = w
			tol[i*n+j] = float64(k+4)*0x1p-23*mag + 1e-30
		}
	}
	return want, tol
}

// gemmPadded returns a rows x cols matrix with row stride ld filled with
// values in [-1, 1), and the padding (columns cols..ld) set to pad.
func gemmPadded(rng *rand.Rand, rows, cols, ld int, pad float32) []float32 {
	v := make([]float32, max(0, (rows-1)*ld+cols))
	for i := range v {
		if i%ld < cols {
			v[i] = 2*rng.Float32() - 1
		} else {
			v[i] = pad
		}
	}
	return v
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	padA, padB     int // extra row stride
	padC           int
	alpha, beta    float32
	bias, relu     bool // epilogue
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d pad=%d/%d/%d alpha=%v beta=%v bias=%v relu=%v",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.padA, tc.padB, tc.padC, tc.alpha, tc.beta, tc.bias, tc.relu)
}

// check runs one product with kern on procs workers and compares it with the
// reference. Padding in A and B is NaN, so reading it would poison C; padding
// in C must keep its bits.
func (tc gemmCase) check(t *testing.T, rng *rand.Rand, kern *gemmKernel, procs int) {
	t.Helper()
	ra, ca := tc.m, tc.k
	if tc.transA {
		ra, ca = tc.k, tc.m
	}
	rb, cb := tc.k, tc.n
	if tc.transB {
		rb, cb = tc.n, tc.k
	}
	lda, ldb, ldc := ca+tc.padA, cb+tc.padB, tc.n+tc.padC
	nan := float32(math.NaN())
	a := gemmPadded(rng, ra, ca, lda, nan)
	b := gemmPadded(rng, rb, cb, ldb, nan)
	const sentinel = float32(-12345.5)
	c := gemmPadded(rng, tc.m, tc.n, ldc, sentinel)
	epi := gemmEpilogue{relu: tc.relu}
	if tc.bias {
		// NaN past n: the kernels must not read it.
		epi.bias = append(gemmPadded(rng, 1, tc.n, tc.n, 0), nan, nan)[:tc.n]
	}
	want, tol := gemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc, epi)
	gemmWith(kern, procs, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc, epi)
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			got := c[i*ldc+j]
			if j >= tc.n {
				if math.Float32bits(got) != math.Float32bits(sentinel) {
					t.Errorf("%v: padding C[%d][%d] changed to %v", tc, i, j, got)
					bad++
				}
				continue
			}
			w := want[i*tc.n+j]
			if d := math.Abs(float64(got) - w); !(d <= tol[i*tc.n+j]) {
				t.Errorf("%v: C[%d][%d] = %v, want %v (tolerance %.3g)", tc, i, j, got, w, tol[i*tc.n+j])
				bad++
			}
			if bad > 5 {
				t.Fatalf("%v: too many errors", tc)
			}
		}
	}
}

func TestGemm(t *testing.T) {
	for _, kern := range gemmKernels() {
		t.Run(kern.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			// Every transpose combination on small shapes, odd and even,
			// around the tile sizes.
			dims := []int{1, 2, 3, 5, 7, 11, 12, 13, 16, 17, 25, 31, 32, 33, 47, 64, 65, 100}
			for it := 0; it < 400; it++ {
				tc := gemmCase{
					transA: it&1 != 0, transB: it&2 != 0,
					m: dims[rng.IntN(len(dims))], n: dims[rng.IntN(len(dims))], k: dims[rng.IntN(len(dims))],
					padA: rng.IntN(3) * rng.IntN(7), padB: rng.IntN(3) * rng.IntN(7), padC: rng.IntN(3) * rng.IntN(7),
					alpha: []float32{1, 0.5}[rng.IntN(2)],
					beta:  []float32{0, 1, -0.5}[rng.IntN(3)],
					bias:  rng.IntN(3) == 0, relu: rng.IntN(3) == 0,
				}
				tc.check(t, rng, kern, 1+rng.IntN(3))
			}
			// The same small shapes cut into as many parts as possible, in
			// short depth blocks, with every transposed B packed panel by
			// panel.
			saved := [...]int{gemmParallelMin, gemmMinPart, gemmMinKPart, gemmSmallC, gemmABlock, gemmPackShared}
			restore := func() {
				gemmParallelMin, gemmMinPart, gemmMinKPart = saved[0], saved[1], saved[2]
				gemmSmallC, gemmABlock, gemmPackShared = saved[3], saved[4], saved[5]
			}
			defer restore()
			gemmParallelMin, gemmMinPart, gemmMinKPart = 0, 0, 4
			gemmSmallC, gemmABlock, gemmPackShared = 0, 2048, 0
			for it := 0; it < 200; it++ {
				tc := gemmCase{
					transA: it&1 != 0, transB: it&2 != 0,
					m: dims[rng.IntN(len(dims))], n: dims[rng.IntN(len(dims))], k: dims[rng.IntN(len(dims))],
					padA: rng.IntN(3), padB: rng.IntN(3), padC: rng.IntN(3),
					alpha: []float32{1, 0.5}[rng.IntN(2)],
					beta:  []float32{0, 1, -0.5}[rng.IntN(3)],
					bias:  rng.IntN(3) == 0, relu: rng.IntN(3) == 0,
				}
				tc.check(t, rng, kern, 1+rng.IntN(4))
			}
			restore()
			// Large enough to be blocked and split over workers, by rows,
			// columns and depth.
			for _, tc := range []gemmCase{
				{m: 300, n: 70, k: 513, padA: 3, padB: 1, padC: 5, alpha: 1, beta: 1},
				{transA: true, m: 300, n: 70, k: 513, alpha: 0.5, beta: -0.5},
				{transB: true, m: 300, n: 70, k: 513, padB: 2, alpha: 1, beta: 0},
				{transA: true, transB: true, m: 70, n: 300, k: 513, alpha: 1, beta: 1},
				{m: 30, n: 333, k: 300, padC: 1, alpha: 1, beta: 0},
				{transB: true, m: 30, n: 333, k: 300, alpha: 1, beta: 1},
				{transA: true, m: 37, n: 45, k: 3001, padA: 1, alpha: 1, beta: 1},
				{transA: true, transB: true, m: 37, n: 45, k: 3001, alpha: 0.5, beta: 0},
				{m: 1, n: 128, k: 9216, alpha: 1, beta: 1},
				{m: 16, n: 40, k: 3000, alpha: 1, beta: 1, bias: true, relu: true}, // K split
				{m: 200, n: 70, k: 300, padC: 3, alpha: 1, bias: true, relu: true},
				{m: 2, n: 200, k: 9216, padA: 1, alpha: 1, beta: 1},
				{transB: true, m: 2, n: 200, k: 9216, alpha: 1, beta: 0},
				{m: 576, n: 64, k: 288, alpha: 1, beta: 1},
			} {
				for _, procs := range []int{1, 2, 3} {
					tc.check(t, rng, kern, procs)
				}
			}
		})
	}
}

// TestGemmZeroBeta checks that beta == 0 overwrites NaN and Inf in C, and
// that alpha == 0 or k == 0 reduce to C = beta*C.
func TestGemmZeroBeta(t *testing.T) {
	for _, kern := range gemmKernels() {
		for _, shape := range [][3]int{{5, 7, 3}, {40, 70, 300}, {300, 64, 288}} {
			m, n, k := shape[0], shape[1], shape[2]
			rng := rand.New(rand.NewPCG(5, 6))
			a, b := gemmPadded(rng, m, k, k, 0), gemmPadded(rng, k, n, n, 0)
			c := make([]float32, m*n)
			for i := range c {
				c[i] = float32(math.NaN())
				if i%3 == 0 {
					c[i] = float32(math.Inf(1))
				}
			}
			gemmWith(kern, 2, false, false, m, n, k, 1, a, k, b, n, 0, c, n, gemmEpilogue{})
			want, _ := gemmRef(false, false, m, n, k, 1, a, k, b, n, 0, c, n, gemmEpilogue{})
			for i, v := range c {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)-want[i]) > 1e-3 {
					t.Fatalf("%s %v: C[%d] = %v, want %v", kern.name, shape, i, v, want[i])
				}
			}
		}
		c := []float32{float32(math.NaN()), 2, 3, 4}
		gemmWith(kern, 1, false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2, gemmEpilogue{})
		if c[0] != 0 || c[3] != 0 {
			t.Errorf("%s: k = 0, beta = 0 left %v", kern.name, c)
		}
		c = []float32{1, 2, 3, 4}
		gemmWith(kern, 1, false, false, 2, 2, 1, 0, []float32{1, 1}, 1, []float32{1, 1}, 2, 0.5, c, 2, gemmEpilogue{})
		if c[0] != 0.5 || c[3] != 2 {
			t.Errorf("%s: alpha = 0, beta = 0.5 gave %v", kern.name, c)
		}
	}
}

// TestGemmDeterministic checks that repeating a product gives the same bits,
// for the shapes that split work over workers in each way.
func TestGemmDeterministic(t *testing.T) {
	for _, tc := range []gemmCase{
		{m: 2000, n: 64, k: 288},
		{transA: true, m: 288, n: 64, k: 20000},
		{transB: true, m: 64, n: 2000, k: 64},
	} {
		rng := rand.New(rand.NewPCG(7, 8))
		ra, ca, rb, cb := tc.m, tc.k, tc.k, tc.n
		if tc.transA {
			ra, ca = ca, ra
		}
		if tc.transB {
			rb, cb = cb, rb
		}
		a, b := gemmPadded(rng, ra, ca, ca, 0), gemmPadded(rng, rb, cb, cb, 0)
		c0 := gemmPadded(rng, tc.m, tc.n, tc.n, 0)
		var first []float32
		for run := 0; run < 4; run++ {
			c := append([]float32(nil), c0...)
			gemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, a, ca, b, cb, 1, c, tc.n)
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%v: run %d differs at %d: %v vs %v", tc, run, i, c[i], first[i])
				}
			}
		}
	}
}

// TestGemmAllocs checks that a product allocates nothing once warm.
func TestGemmAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m, n, k := 1000, 64, 288
	a, b, c := gemmPadded(rng, m, k, k, 0), gemmPadded(rng, k, n, n, 0), make([]float32, m*n)
	for _, f := range []func(){
		func() { gemm(false, false, m, n, k, 1, a, k, b, n, 1, c, n) },
		func() { gemm(true, false, k, n, m, 1, a, k, c, n, 0, b, n) },
		func() { gemm(false, true, m, k, n, 1, c, n, b, n, 0, a, k) },
		func() { gemm(false, false, 3, 5, 7, 1, a, k, b, n, 1, c, n) },
	} {
		f()
		if allocs := testing.AllocsPerRun(10, f); allocs > 0 {
			t.Errorf("gemm allocates %v times per call", allocs)
		}
	}
}

// BenchmarkGEMMShapes times the other products of keras-mnist: conv1 and
// dense1 at batch 128, and the single-image products of prediction.
func BenchmarkGEMMShapes(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	fill := func(s int) []float32 {
		v := make([]float32, s)
		for i := range v {
			v[i] = rng.Float32()
		}
		return v
	}
	type shape struct {
		name           string
		transA, transB bool
		m, n, k        int
	}
	for _, s := range []shape{
		{"conv1-forward", false, false, 86528, 32, 9},
		{"conv1-weight-grad", true, false, 9, 32, 86528},
		{"dense1-forward", false, false, 128, 128, 9216},
		{"dense1-weight-grad", true, false, 9216, 128, 128},
		{"dense1-input-grad", false, true, 128, 9216, 128},
		{"conv2-forward-1image", false, false, 576, 64, 288},
		{"conv2-input-grad-1image", false, true, 576, 288, 64},
		{"dense1-forward-1image", false, false, 1, 128, 9216},
	} {
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
		a, bm, c := fill(s.m*s.k), fill(s.k*s.n), fill(s.m*s.n)
		for _, kern := range gemmKernels() {
			if kern.name == "generic" && gemmDefault.name != "generic" {
				continue
			}
			b.Run(fmt.Sprintf("%s-%dx%dx%d/%s", s.name, s.m, s.n, s.k, kern.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					gemmWith(kern, runtime.GOMAXPROCS(0), s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 1, c, s.n, gemmEpilogue{})
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
