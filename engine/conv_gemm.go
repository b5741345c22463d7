package engine

import (
	"math"
	"unsafe"
)

// Implicit-GEMM convolution: the three products of a Conv2D layer, computed
// one image at a time by the GEMM microkernels (gemm.go) reading the image
// in place. No im2col matrix is built: in NHWC, the receptive field of an
// output pixel is KH runs of KW*C contiguous floats, one per kernel row, so
// a row of the virtual matrix cols(M, K) is KH segments of a tile, and
// consecutive output pixels of one output row are rows S*C floats apart.
// Everything an image needs (its input, the weights, its output) stays in
// L2, where im2col wrote and re-read 85 MB per batch for keras-mnist's conv2.
//
// Shape legend, per image (see doc.go for the letters):
//
//	xp  (HP, WP, C)     the input, padded for "same" (else the input itself)
//	w   (KH, KW, C, OC) = W(K, OC), K = KH*KW*C, row-major
//	y   (OH, OW, OC)    the output; dy its gradient
//	dyp (OH+2(KH-1), OW+2(KW-1), OC)  dy with a zero border of KH-1 rows and
//	                    KW-1 columns, for the input gradient
//	wf  (KH, KW, OC, C) w flipped in space and transposed: wf(ky,kx,o,c) =
//	                    w(KH-1-ky, KW-1-kx, c, o)
//	dx  (H, W, C)       the input gradient
//
// The three products, for stride S:
//
//	forward      y(oy, ox, :)   = Σ_{ky} xp(oy*S+ky, ox*S : ox*S+KW, :) · W(ky, :, :) + b
//	weight grad  W(ky, p, :)   += Σ_{oy,ox} xp(oy*S+ky, ox*S + p/C, p%C) dy(oy, ox, :)
//	             b             += Σ_{oy,ox} dy(oy, ox, :)    (p < KW*C)
//	input grad   dx(iy, ix, :)  = Σ_{ky} dyp(iy'+ky, ix' : ix'+KW, :) · wf(ky, :, :, :)
//
// where (iy', ix') is (iy, ix) in xp's coordinates. The input gradient is
// the transposed convolution written as a plain one ("full" correlation of
// dy with the flipped kernel); it needs stride 1 (strided layers use
// convInputGradStrided: a GEMM into a per-image dcols and col2im).
//
// A tile takes up to MR consecutive pixels of one output (or input) row;
// rows are cut into tiles of equal size (26 = 9+9+8 rather than 12+12+2).

// convGeom is a convolution as the kernels see it: "valid", stride s, over
// an input of hp x wp pixels (the padded input when padding is "same").
type convGeom struct {
	h, w, c        int // the unpadded input
	hp, wp         int // the input the kernels read
	padTop, padLft int
	kh, kw, s      int
	oh, ow, oc     int
}

// k is the depth of the virtual im2col matrix.
func (g *convGeom) k() int { return g.kh * g.kw * g.c }

// dypShape is the height and width of dyp.
func (g *convGeom) dypShape() (h, w int) { return g.oh + 2*(g.kh-1), g.ow + 2*(g.kw-1) }

// gemmOne is the constant 1 that the bias gradient's one-row "A" reads at
// every step.
var gemmOne = [1]float32{1}

// gemmPrefetchOff is an idle prefetch cursor for tiles that need none.
func gemmPrefetchOff(t *gemmTile) {
	t.pa = uintptr(unsafe.Pointer(&gemmPrefetchIdle[0]))
	t.pb, t.pas, t.pbs = t.pa, 0, 0
}

// tileRows returns the size of the tile that starts at i of a row of n
// pixels cut into tiles of equal size, at most mr each.
func tileRows(kern *gemmKernel, i, n int) int {
	tiles := (n + kern.mr - 1) / kern.mr
	base, extra := n/tiles, n%tiles
	// Tiles 0..extra-1 have base+1 rows.
	r := base
	if i < extra*(base+1) {
		r = base + 1
	}
	return min(r, n-i)
}

// convForward computes output rows [oy0, oy1) of one image:
// y = max(conv(xp, w) + bias, floor), floor 0 for a fused ReLU.
func convForward(kern *gemmKernel, g *convGeom, xp, w, bias []float32, relu bool, y []float32, oy0, oy1 int) {
	xp = xp[:g.hp*g.wp*g.c] // bounds: the kernels do not check
	w = w[:g.k()*g.oc]      // bounds: the kernels do not check
	y = y[:g.oh*g.ow*g.oc]  // bounds: the kernels do not check
	t := gemmTile{
		k: g.kw * g.c, segs: g.kh,
		rs: uintptr(g.s*g.c) * 4, cs: 4, aSeg: uintptr(g.wp*g.c-g.kw*g.c) * 4,
		bks: uintptr(g.oc) * 4, ldc: uintptr(g.oc) * 4,
		alpha: 1, floor: reluFloor(relu),
	}
	gemmPrefetchOff(&t)
	for jc := 0; jc < g.oc; jc += kern.nr {
		t.nc = min(kern.nr, g.oc-jc)
		t.b, t.bias = unsafe.Pointer(&w[jc]), unsafe.Pointer(&bias[jc])
		for oy := oy0; oy < oy1; oy++ {
			for ox := 0; ox < g.ow; {
				r := tileRows(kern, ox, g.ow)
				t.a = unsafe.Pointer(&xp[(oy*g.s*g.wp+ox*g.s)*g.c])
				t.c = unsafe.Pointer(&y[(oy*g.ow+ox)*g.oc+jc])
				kern.micro(r, &t)
				ox += r
			}
		}
	}
}

// convWeightGrad computes, for one image, dw = beta*dw + colsᵀ·dy and
// db = beta*db + Σ dy over pixels. dy(oy, ox, o) is at
// dy[oy*dyRow + ox*OC + o], so it can be read inside dyp. The kernels
// prefetch next, which may be nil, one cache line per step: the caller's
// next image, which memory would otherwise deliver only on demand.
func convWeightGrad(kern *gemmKernel, g *convGeom, xp, dy []float32, dyRow int, dw, db []float32, beta float32, next []float32) {
	kwc := g.kw * g.c
	xp = xp[:g.hp*g.wp*g.c]            // bounds: the kernels do not check
	dy = dy[:(g.oh-1)*dyRow+g.ow*g.oc] // bounds: the kernels do not check
	dw = dw[:g.k()*g.oc]               // bounds: the kernels do not check
	db = db[:g.oc]                     // bounds: the kernels do not check
	// A = colsᵀ: rows are the KW*C depths of one kernel row (contiguous),
	// the sum runs over the pixels of each output row (S*C apart), one
	// segment per output row.
	t := gemmTile{
		k: g.ow, segs: g.oh,
		rs: 4, cs: uintptr(g.s*g.c) * 4, aSeg: uintptr(g.s*g.wp*g.c-g.ow*g.s*g.c) * 4,
		bks: uintptr(g.oc) * 4, bSeg: uintptr(dyRow-g.ow*g.oc) * 4,
		ldc: uintptr(g.oc) * 4, alpha: 1, beta: beta, floor: float32(math.Inf(-1)),
	}
	gemmPrefetchOff(&t)
	var pf gemmPrefetch
	if len(next) > 0 {
		base := uintptr(unsafe.Pointer(&next[0]))
		pf = gemmPrefetch{a: t.pa, b: base, bEnd: base + uintptr(len(next))*4, bs: 64}
	}
	for jc := 0; jc < g.oc; jc += kern.nr {
		t.nc = min(kern.nr, g.oc-jc)
		t.b = unsafe.Pointer(&dy[jc])
		for ky := 0; ky < g.kh; ky++ {
			for p := 0; p < kwc; {
				r := tileRows(kern, p, kwc)
				t.a = unsafe.Pointer(&xp[ky*g.wp*g.c+p])
				t.c = unsafe.Pointer(&dw[(ky*kwc+p)*g.oc+jc])
				if pf.bs != 0 {
					t.pb, t.pbs = pf.b, pf.bs
				}
				kern.micro(r, &t)
				pf.advance(t.k * t.segs)
				if pf.bs == 0 {
					t.pb, t.pbs = t.pa, 0
				}
				p += r
			}
		}
		// The bias gradient is the same sum with a row of ones for A.
		one := t
		one.a, one.rs, one.cs, one.aSeg = unsafe.Pointer(&gemmOne[0]), 0, 0, 0
		one.c = unsafe.Pointer(&db[jc])
		kern.micro(1, &one)
	}
}

// convInputGrad computes one image's input gradient dx (H, W, C) from dyp
// and wf, for stride 1. Input rows near the top and bottom skip the kernel
// rows that fall in dyp's zero border.
func convInputGrad(kern *gemmKernel, g *convGeom, dyp, wf, dx []float32) {
	if g.s != 1 {
		panic("engine: convInputGrad needs stride 1")
	}
	hy, wy := g.dypShape()
	kwo := g.kw * g.oc
	dyp = dyp[:hy*wy*g.oc] // bounds: the kernels do not check
	wf = wf[:g.kh*kwo*g.c] // bounds: the kernels do not check
	dx = dx[:g.h*g.w*g.c]  // bounds: the kernels do not check
	t := gemmTile{
		k: kwo, rs: uintptr(g.oc) * 4, cs: 4, aSeg: uintptr(wy*g.oc-kwo) * 4,
		bks: uintptr(g.c) * 4, ldc: uintptr(g.c) * 4,
		alpha: 1, floor: float32(math.Inf(-1)),
	}
	gemmPrefetchOff(&t)
	for jc := 0; jc < g.c; jc += kern.nr {
		t.nc = min(kern.nr, g.c-jc)
		for y := 0; y < g.h; y++ {
			iy := y + g.padTop
			// dyp row iy+ky holds dy row iy+ky-(KH-1), which must exist.
			ky0, ky1 := max(0, g.kh-1-iy), min(g.kh, g.kh-1+g.oh-iy)
			t.segs = ky1 - ky0
			t.b = unsafe.Pointer(&wf[ky0*kwo*g.c+jc])
			for x := 0; x < g.w; {
				r := tileRows(kern, x, g.w)
				t.a = unsafe.Pointer(&dyp[((iy+ky0)*wy+x+g.padLft)*g.oc])
				t.c = unsafe.Pointer(&dx[(y*g.w+x)*g.c+jc])
				kern.micro(r, &t)
				x += r
			}
		}
	}
}

// convFlipWeights writes wf (KH, KW, OC, C) from w (KH, KW, C, OC).
func convFlipWeights(g *convGeom, wf, w []float32) {
	for ky := 0; ky < g.kh; ky++ {
		for kx := 0; kx < g.kw; kx++ {
			src := w[((g.kh-1-ky)*g.kw+g.kw-1-kx)*g.c*g.oc:][:g.c*g.oc]
			dst := wf[(ky*g.kw+kx)*g.oc*g.c:][:g.oc*g.c]
			for c := 0; c < g.c; c++ {
				for o := 0; o < g.oc; o++ {
					dst[o*g.c+c] = src[c*g.oc+o]
				}
			}
		}
	}
}

// convInputGradStrided computes one image's input gradient for any stride:
// dcols (OH*OW, K) = dy·Wᵀ with wt = Wᵀ (OC, K), then col2im adds each row
// of dcols back onto the pixels it was read from. dy(oy, ox, o) is at
// dy[(oy*OW + ox)*OC + o].
func convInputGradStrided(kern *gemmKernel, g *convGeom, dy, wt, dcols, dx []float32) {
	m, k := g.oh*g.ow, g.k()
	gemmWith(kern, 1, false, false, m, k, g.oc, 1, dy, g.oc, wt, k, 0, dcols, k, gemmEpilogue{})
	clear32(dx[:g.h*g.w*g.c])
	for oy := 0; oy < g.oh; oy++ {
		for ox := 0; ox < g.ow; ox++ {
			row := dcols[(oy*g.ow+ox)*k:][:k]
			for ky := 0; ky < g.kh; ky++ {
				iy := oy*g.s - g.padTop + ky
				if iy < 0 || iy >= g.h {
					continue
				}
				for kx := 0; kx < g.kw; kx++ {
					ix := ox*g.s - g.padLft + kx
					if ix < 0 || ix >= g.w {
						continue
					}
					src := row[(ky*g.kw+kx)*g.c:][:g.c]
					dst := dx[(iy*g.w+ix)*g.c:][:g.c]
					for i, v := range src {
						dst[i] += v
					}
				}
			}
		}
	}
}

// convPad copies one image x (H, W, C) into the interior of xp (HP, WP, C)
// at (padTop, padLft); the border must already be zero, or is zeroed if
// clearBorder.
func convPad(g *convGeom, xp, x []float32, clearBorder bool) {
	if clearBorder {
		clear32(xp[:g.hp*g.wp*g.c])
	}
	rowLen := g.w * g.c
	for y := 0; y < g.h && y+g.padTop < g.hp; y++ {
		n := min(rowLen, (g.wp-g.padLft)*g.c)
		copy(xp[((y+g.padTop)*g.wp+g.padLft)*g.c:][:n], x[y*rowLen:][:n])
	}
}
