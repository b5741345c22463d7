//go:build !purego

package engine

import "golang.org/x/sys/cpu"

// vecAVX512 selects the assembly of vec_amd64.s. (x/sys/cpu reports
// AVX-512 only when the OS saves its registers.)
var vecAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// vecDropoutDQ: the dropout kernel multiplies 64-bit lanes (AVX512DQ).
var vecDropoutDQ = cpu.X86.HasAVX512DQ

//go:noescape
func vecReluMaskAVX512(dst, grad, y *float32, n int)

//go:noescape
func vecPoolMaxAVX512(y, x *float32, c, size, rowStride int)

//go:noescape
func vecPoolRouteSetAVX512(dx, x, y, grad *float32, c, size, rowStride int)

//go:noescape
func vecPoolRouteAddAVX512(dx, x, y, grad *float32, c, size, rowStride int)

//go:noescape
func vecAdadeltaAVX512(p, grad, a, d *float32, n int, rho, omr, lr, eps float32)

//go:noescape
func vecDropoutAVX512(dst, src *float32, n int, z0, golden uint64, threshold uint32, scale float32)
