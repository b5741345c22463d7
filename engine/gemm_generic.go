package engine

import "unsafe"

// The portable microkernel: a 4 x 16 tile in plain Go, used under the
// purego build tag, on other architectures and on CPUs without AVX2/FMA. It
// follows the tile contract of gemmTile (gemm.go); every address it forms
// is that of an element it reads or writes, so that -race's checkptr sees
// no pointer leave its allocation.

const (
	gemmGenericMR = 4
	gemmGenericNR = 16
)

func newGenericGemmKernel() *gemmKernel {
	return newGemmKernel("generic", gemmGeneric, gemmGenericMR, gemmGenericNR, 256, 64)
}

func gemmGenericMicro(r int, t *gemmTile) {
	var acc [gemmGenericMR][gemmGenericNR]float32
	k, nc := t.k, t.nc
	aSeg := uintptr(k)*t.cs + t.aSeg // segment strides
	bSeg := uintptr(k)*t.bks + t.bSeg
	for s := 0; s < t.segs; s++ {
		aOff, bOff := uintptr(s)*aSeg, uintptr(s)*bSeg
		at := func(i, p int) float32 {
			return *(*float32)(unsafe.Add(t.a, aOff+uintptr(i)*t.rs+uintptr(p)*t.cs))
		}
		for p := 0; p < k; p++ {
			brow := unsafe.Slice((*float32)(unsafe.Add(t.b, bOff+uintptr(p)*t.bks)), nc)
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
	}
	var bias []float32
	if t.bias != nil {
		bias = unsafe.Slice((*float32)(t.bias), nc)
	}
	for i := 0; i < r; i++ {
		crow := unsafe.Slice((*float32)(unsafe.Add(t.c, uintptr(i)*t.ldc)), nc)
		row := acc[i][:len(crow)]
		for j := range crow {
			v := t.alpha * row[j]
			if t.beta != 0 {
				v += t.beta * crow[j]
			}
			if bias != nil {
				v += bias[j]
			}
			crow[j] = max(v, t.floor)
		}
	}
}
