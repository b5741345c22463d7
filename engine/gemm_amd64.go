//go:build !purego

package engine

import "golang.org/x/sys/cpu"

// gemmKernels lists the kernel families this CPU can run, fastest first.
// golang.org/x/sys/cpu reports AVX-512 and AVX only when the OS also saves
// the wider registers.
func gemmKernels() []*gemmKernel {
	var ks []*gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, newGemmKernel("avx512", 32, 384, 192, map[int]gemmMicro{
			1: gemmAVX512x1, 2: gemmAVX512x2, 3: gemmAVX512x3, 4: gemmAVX512x4,
			5: gemmAVX512x5, 6: gemmAVX512x6, 7: gemmAVX512x7, 8: gemmAVX512x8,
			9: gemmAVX512x9, 10: gemmAVX512x10, 11: gemmAVX512x11, 12: gemmAVX512x12,
		}))
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, newGemmKernel("avx2", 16, 384, 96, map[int]gemmMicro{
			1: gemmAVX2x1, 2: gemmAVX2x2, 3: gemmAVX2x3, 4: gemmAVX2x4, 5: gemmAVX2x5, 6: gemmAVX2x6,
		}))
	}
	return append(ks, newGenericGemmKernel())
}

// The microkernels of gemm_amd64.s: gemmAVX512xR computes R rows of up to 32
// columns, gemmAVX2xR R rows of up to 16. The contract is at the top of
// gemm_amd64.s.

//go:noescape
func gemmAVX512x1(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x2(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x3(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x4(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x5(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x6(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x7(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x8(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x9(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x10(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x11(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

//go:noescape
func gemmAVX512x12(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

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
