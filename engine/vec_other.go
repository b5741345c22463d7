//go:build purego || !amd64

package engine

// Without assembly, the Go versions of vec.go run.
const (
	vecAVX512    = false
	vecDropoutDQ = false
)

func vecReluMaskAVX512(dst, grad, y *float32, n int)                        { panic("unreachable") }
func vecPoolMaxAVX512(y, x *float32, c, size, rowStride int)                { panic("unreachable") }
func vecPoolRouteSetAVX512(dx, x, y, grad *float32, c, size, rowStride int) { panic("unreachable") }
func vecPoolRouteAddAVX512(dx, x, y, grad *float32, c, size, rowStride int) { panic("unreachable") }
func vecAdadeltaAVX512(p, grad, a, d *float32, n int, rho, omr, lr, eps float32) {
	panic("unreachable")
}

func vecDropoutAVX512(dst, src *float32, n int, z0, golden uint64, threshold uint32, scale float32) {
	panic("unreachable")
}
