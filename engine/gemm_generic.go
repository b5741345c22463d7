package engine

import "unsafe"

// The portable microkernel: a 4 x 16 tile in plain Go, used under the
// purego build tag, on other architectures and on CPUs without AVX2/FMA. It
// follows the contract of the assembly kernels (see gemm_amd64.s): A(i, p)
// at a + i*rs + p*cs, B(p, j) at b + p*bks + 4j, strides in bytes.

const (
	gemmGenericMR = 4
	gemmGenericNR = 16
)

func newGenericGemmKernel() *gemmKernel {
	micro := map[int]gemmMicro{}
	for r := 1; r <= gemmGenericMR; r++ {
		micro[r] = func(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, _, _, _, _ uintptr) {
			gemmGenericMicro(r, k, a, rs, cs, b, bks, c, ldc, alpha, beta, nc)
		}
	}
	return newGemmKernel("generic", gemmGenericNR, 256, 64, micro)
}

func gemmGenericMicro(r, k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int) {
	var acc [gemmGenericMR][gemmGenericNR]float32
	ap, bp := unsafe.Pointer(a), unsafe.Pointer(b)
	at := func(i, p int) float32 { return *(*float32)(unsafe.Add(ap, uintptr(i)*rs+uintptr(p)*cs)) }
	for p := 0; p < k; p++ {
		brow := unsafe.Slice((*float32)(unsafe.Add(bp, uintptr(p)*bks)), nc)
		if r == 4 {
			// Four rows per pass over B: four multiply-adds per load.
			a0, a1, a2, a3 := at(0, p), at(1, p), at(2, p), at(3, p)
			r0, r1, r2, r3 := acc[0][:len(brow)], acc[1][:len(brow)], acc[2][:len(brow)], acc[3][:len(brow)]
			for j, bv := range brow {
				r0[j] += a0 * bv
				r1[j] += a1 * bv
				r2[j] += a2 * bv
				r3[j] += a3 * bv
			}
			continue
		}
		for i := 0; i < r; i++ {
			av := at(i, p)
			row := acc[i][:len(brow)]
			for j, bv := range brow {
				row[j] += av * bv
			}
		}
	}
	for i := 0; i < r; i++ {
		crow := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(c), uintptr(i)*ldc)), nc)
		row := acc[i][:len(crow)]
		if beta == 0 {
			for j := range crow {
				crow[j] = alpha * row[j]
			}
		} else {
			for j := range crow {
				crow[j] = alpha*row[j] + beta*crow[j]
			}
		}
	}
}
