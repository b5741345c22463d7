package engine

import "math"

// Vector kernels: the elementwise passes of training (the ReLU's mask, max
// pooling, the Adadelta update), in AVX-512 assembly where the CPU has it
// (vec_amd64.s) and in plain Go otherwise. The Go versions below are the
// reference: the assembly gives the same bits (it uses no fused
// multiply-add, and max keeps Go's rules for NaN and signed zeros), and the
// tests check that it does.
//
// Shape legend: n values; for pooling, c channels per pixel, a size x size
// window whose rows are rowStride floats apart in the input (NHWC: W*C).

// reluMaskTo writes g where the ReLU's output y is positive, else 0:
// dst = g ⊙ [y > 0]. -0 and NaN outputs cut the gradient.
func reluMaskTo(dst, g, y []float32) {
	g, y = g[:len(dst)], y[:len(dst)]
	if len(dst) == 0 {
		return
	}
	if vecAVX512 {
		vecReluMaskAVX512(&dst[0], &g[0], &y[0], len(dst))
		return
	}
	reluMaskToGo(dst, g, y)
}

func reluMaskToGo(dst, g, y []float32) {
	g, y = g[:len(dst)], y[:len(dst)]
	for i, v := range y {
		// The mask is all ones exactly when v's bits, as an int32, are
		// positive: v > 0 (NaNs are cut too, as their sign is irrelevant
		// to a gradient that is already lost). Negating in 64 bits keeps
		// -0 (MinInt32) negative after the negation's sign flip.
		mask := uint32(-int64(int32(math.Float32bits(v))) >> 63)
		if v != v {
			mask = 0
		}
		dst[i] = math.Float32frombits(math.Float32bits(g[i]) & mask)
	}
}

// poolMax writes y[0:c] = the maximum over a size x size window of x, per
// channel. x is the window's top-left pixel.
func poolMax(y, x []float32, c, size, rowStride int) {
	x = x[:(size-1)*rowStride+size*c] // bounds: the kernels do not check
	y = y[:c]
	if vecAVX512 && c > 0 {
		vecPoolMaxAVX512(&y[0], &x[0], c, size, rowStride)
		return
	}
	poolMaxGo(y, x, c, size, rowStride)
}

func poolMaxGo(y, x []float32, c, size, rowStride int) {
	copy(y, x[:c])
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			for ch, v := range x[py*rowStride+px*c:][:c] {
				y[ch] = max(y[ch], v)
			}
		}
	}
}

// poolRoute is poolMax's backward pass for one window: the first pixel of
// the window whose value has the bits of y gets g, per channel; the others
// get 0 (add, if accumulate: overlapping windows add up).
func poolRoute(dx, x, y, g []float32, c, size, rowStride int, accumulate bool) {
	x = x[:(size-1)*rowStride+size*c]   // bounds: the kernels do not check
	dx = dx[:(size-1)*rowStride+size*c] // bounds: the kernels do not check
	y, g = y[:c], g[:c]
	if vecAVX512 && c > 0 {
		if accumulate {
			vecPoolRouteAddAVX512(&dx[0], &x[0], &y[0], &g[0], c, size, rowStride)
		} else {
			vecPoolRouteSetAVX512(&dx[0], &x[0], &y[0], &g[0], c, size, rowStride)
		}
		return
	}
	poolRouteGo(dx, x, y, g, c, size, rowStride, accumulate)
}

func poolRouteGo(dx, x, y, g []float32, c, size, rowStride int, accumulate bool) {
	for ch := range y {
		mb, gb := math.Float32bits(y[ch]), math.Float32bits(g[ch])
		var done uint32 // all ones once the maximum is found
		for py := 0; py < size; py++ {
			for px := 0; px < size; px++ {
				at := py*rowStride + px*c + ch
				d := math.Float32bits(x[at]) ^ mb
				eq := ((d | -d) >> 31) - 1 // all ones if the bits are equal
				v := math.Float32frombits(gb & eq &^ done)
				done |= eq
				if accumulate {
					dx[at] += v
				} else {
					dx[at] = v
				}
			}
		}
	}
}

// adadeltaUpdate applies Adadelta to n values (see Adadelta):
// a ← ρ·a + (1−ρ)·g²; Δ = g·√(d+ε)/√(a+ε); p ← p − lr·Δ; d ← ρ·d + (1−ρ)·Δ².
func adadeltaUpdate(p, g, a, d []float32, rho, lr, eps float32) {
	g, a, d = g[:len(p)], a[:len(p)], d[:len(p)]
	if len(p) == 0 {
		return
	}
	if vecAVX512 {
		vecAdadeltaAVX512(&p[0], &g[0], &a[0], &d[0], len(p), rho, 1-rho, lr, eps)
		return
	}
	adadeltaUpdateGo(p, g, a, d, rho, lr, eps)
}

func adadeltaUpdateGo(p, g, a, d []float32, rho, lr, eps float32) {
	g, a, d = g[:len(p)], a[:len(p)], d[:len(p)]
	for i, gi := range g {
		a[i] = rho*a[i] + (1-rho)*gi*gi
		upd := gi * sqrt32(d[i]+eps) / sqrt32(a[i]+eps)
		p[i] -= lr * upd
		d[i] = rho*d[i] + (1-rho)*upd*upd
	}
}
