//go:build purego || !amd64

package engine

// gemmKernels lists the kernel families this build can run, fastest first.
func gemmKernels() []*gemmKernel {
	return []*gemmKernel{newGenericGemmKernel()}
}

func gemmMicroAVX512(r int, t *gemmTile) { panic("engine: no AVX-512 kernels in this build") }

func gemmMicroAVX2(r int, t *gemmTile) { panic("engine: no AVX2 kernels in this build") }
