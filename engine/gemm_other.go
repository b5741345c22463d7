//go:build purego || !amd64

package engine

// gemmKernels lists the kernel families this build can run, fastest first.
func gemmKernels() []*gemmKernel {
	return []*gemmKernel{newGenericGemmKernel()}
}
