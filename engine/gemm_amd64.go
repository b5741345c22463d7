//go:build !purego

package engine

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// gemmKernels lists the kernel families this CPU can run, fastest first.
// golang.org/x/sys/cpu reports AVX-512 and AVX only when the OS also saves
// the wider registers.
func gemmKernels() []*gemmKernel {
	var ks []*gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, newGemmKernel("avx512", gemmAVX512, 12, 32, 384, 192))
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, newGemmKernel("avx2", gemmAVX2, 6, 16, 384, 96))
	}
	return append(ks, newGenericGemmKernel())
}

// gemmAVX2Micro is the flat signature of the AVX2 kernels: one segment,
// C = alpha*A*B + beta*C (see gemm_amd64.s).
type gemmAVX2Micro func(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

// gemmMicroAVX512 runs the AVX-512 kernel of r rows.
func gemmMicroAVX512(r int, t *gemmTile) {
	switch r {
	case 1:
		gemmAVX512x1(t)
	case 2:
		gemmAVX512x2(t)
	case 3:
		gemmAVX512x3(t)
	case 4:
		gemmAVX512x4(t)
	case 5:
		gemmAVX512x5(t)
	case 6:
		gemmAVX512x6(t)
	case 7:
		gemmAVX512x7(t)
	case 8:
		gemmAVX512x8(t)
	case 9:
		gemmAVX512x9(t)
	case 10:
		gemmAVX512x10(t)
	case 11:
		gemmAVX512x11(t)
	default:
		gemmAVX512x12(t)
	}
}

// gemmAVX2Kernels are the AVX2 kernels by row count.
var gemmAVX2Kernels = [...]gemmAVX2Micro{nil, gemmAVX2x1, gemmAVX2x2, gemmAVX2x3, gemmAVX2x4, gemmAVX2x5, gemmAVX2x6}

// gemmMicroAVX2 adapts the AVX2 kernel of r rows to the tile contract: one
// call per segment, accumulating after the first, then the bias and floor
// in Go over the tile, which is still in L1.
func gemmMicroAVX2(r int, t *gemmTile) {
	f := gemmAVX2Kernels[r]
	{
		aSeg := uintptr(t.k)*t.cs + t.aSeg
		bSeg := uintptr(t.k)*t.bks + t.bSeg
		beta, pa, pb := t.beta, t.pa, t.pb
		for s := 0; s < t.segs; s++ {
			a := (*float32)(unsafe.Add(t.a, uintptr(s)*aSeg))
			b := (*float32)(unsafe.Add(t.b, uintptr(s)*bSeg))
			f(t.k, a, t.rs, t.cs, b, t.bks, (*float32)(t.c), t.ldc, t.alpha, beta, t.nc, pa, pb, t.pas, t.pbs)
			beta = 1
			pa += uintptr(t.k) * t.pas
			pb += uintptr(t.k) * t.pbs
		}
		if t.bias == nil && t.floor < 0 {
			return
		}
		var bias []float32
		if t.bias != nil {
			bias = unsafe.Slice((*float32)(t.bias), t.nc)
		}
		for i := 0; i < r; i++ {
			row := unsafe.Slice((*float32)(unsafe.Add(t.c, uintptr(i)*t.ldc)), t.nc)
			for j, v := range row {
				if bias != nil {
					v += bias[j]
				}
				row[j] = max(v, t.floor)
			}
		}
	}
}

// The microkernels of gemm_amd64.s: gemmAVX512xR computes R rows of up to 32
// columns, gemmAVX2xR R rows of up to 16. The contracts are at the top of
// gemm_amd64.s.

//go:noescape
func gemmAVX512x1(t *gemmTile)

//go:noescape
func gemmAVX512x2(t *gemmTile)

//go:noescape
func gemmAVX512x3(t *gemmTile)

//go:noescape
func gemmAVX512x4(t *gemmTile)

//go:noescape
func gemmAVX512x5(t *gemmTile)

//go:noescape
func gemmAVX512x6(t *gemmTile)

//go:noescape
func gemmAVX512x7(t *gemmTile)

//go:noescape
func gemmAVX512x8(t *gemmTile)

//go:noescape
func gemmAVX512x9(t *gemmTile)

//go:noescape
func gemmAVX512x10(t *gemmTile)

//go:noescape
func gemmAVX512x11(t *gemmTile)

//go:noescape
func gemmAVX512x12(t *gemmTile)

//go:noescape
func gemmAVX2x1(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX2x2(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX2x3(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX2x4(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX2x5(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX2x6(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)
