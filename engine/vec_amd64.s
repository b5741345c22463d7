//go:build !purego

#include "textflag.h"

// AVX-512 vector kernels for vec.go, which holds the Go reference of each
// and their contracts. Every loop runs over chunks of 16 floats; the last
// chunk is masked with K1, so nothing past the end is read or written.
// None uses fused multiply-add, so the results are those of the Go code.

// K1 = the mask of the next chunk: min(CX, 16) ones (CX >= 1). Uses AX
// and R11.
#define CHUNKMASK \
	MOVQ    $1, R11; \
	SHLQ    CX, R11; \
	DECQ    R11; \
	MOVQ    $0xffff, AX; \
	CMPQ    CX, $16; \
	CMOVQLT R11, AX; \
	KMOVW   AX, K1

// The arguments of both routing kernels (see poolRoute in vec.go): for
// each channel, the first pixel of the window at x whose bits equal y's
// gets g, the others 0; dx has x's layout.
#define ROUTEARGS \
	MOVQ dx+0(FP), DI; \
	MOVQ x+8(FP), SI; \
	MOVQ y+16(FP), DX; \
	MOVQ grad+24(FP), BX; \
	MOVQ c+32(FP), CX; \
	MOVQ size+40(FP), R8; \
	MOVQ rowStride+48(FP), R9; \
	SHLQ $2, R9; \
	MOVQ CX, R10; \
	SHLQ $2, R10; \
	MOVQ DI, R12; \
	SUBQ SI, R12

// func vecReluMaskAVX512(dst, grad, y *float32, n int)
// dst = g where y > 0, else 0.
TEXT ·vecReluMaskAVX512(SB), NOSPLIT, $0-32
	MOVQ   dst+0(FP), DI
	MOVQ   grad+8(FP), SI
	MOVQ   y+16(FP), DX
	MOVQ   n+24(FP), CX
	VPXORD Z31, Z31, Z31

loop:
	CHUNKMASK
	VMOVUPS.Z (DX), K1, Z0
	VCMPPS    $0x1e, Z31, Z0, K1, K2 // K2 = K1 & (y > 0), ordered: NaN is false
	VMOVUPS.Z (SI), K2, Z1
	VMOVUPS   Z1, K1, (DI)
	ADDQ      $64, DX
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JG        loop
	VZEROUPPER
	RET

// MAXGO(s, d, t): d = max(d, s) with Go's rules: NaN if either is NaN,
// +0 for max(+0, -0). VMAXPS returns its second source (s) when either is
// NaN or both are zeros; equal values (zeros of either sign included) take
// d AND s bitwise, and a NaN d is kept. K3, K4 and t are scratch.
#define MAXGO(s, d, t) \
	VMAXPS  s, d, t; \
	VCMPPS  $0, s, d, K3; \
	VPANDD  s, d, K3, t; \
	VCMPPS  $3, d, d, K4; \
	VMOVAPS d, K4, t; \
	VMOVAPS t, d

// func vecPoolMaxAVX512(y, x *float32, c, size, rowStride int)
// y[0:c] = max over the size x size window at x (pixels c floats apart,
// rows rowStride floats apart).
TEXT ·vecPoolMaxAVX512(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ c+16(FP), CX
	MOVQ size+24(FP), R8
	MOVQ rowStride+32(FP), R9
	SHLQ $2, R9
	MOVQ CX, R10
	SHLQ $2, R10

chunk:
	CHUNKMASK
	VMOVUPS.Z (SI), K1, Z0
	MOVQ      SI, R11  // the window row
	MOVQ      R8, R12

row:
	MOVQ R11, R13 // the pixel
	MOVQ R8, R14

pixel:
	VMOVUPS.Z (R13), K1, Z1
	MAXGO(Z1, Z0, Z2)
	ADDQ      R10, R13
	DECQ      R14
	JNZ       pixel
	ADDQ      R9, R11
	DECQ      R12
	JNZ       row
	VMOVUPS   Z0, K1, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JG        chunk
	VZEROUPPER
	RET

// ROUTEHEAD, a store, ROUTETAIL: for each chunk of 16 channels, the
// window's pixels in order; K4 = channels whose maximum was already found,
// K3 = channels whose maximum is this pixel. The store writes Z3 (g or 0)
// to the pixel's gradient at (R14)(R12*1), R12 being dx - x.
#define ROUTEHEAD \
chunk: \
	CHUNKMASK; \
	VMOVUPS.Z (DX), K1, Z0; \
	VMOVUPS.Z (BX), K1, Z1; \
	KXORW     K4, K4, K4; \
	MOVQ      SI, R11; \
	MOVQ      R8, R13; \
row: \
	MOVQ R11, R14; \
	MOVQ R8, AX; \
pixel: \
	VMOVUPS.Z (R14), K1, Z2; \
	VPCMPEQD  Z0, Z2, K1, K2; \
	KANDNW    K2, K4, K3; \
	KORW      K2, K4, K4; \
	VMOVAPS.Z Z1, K3, Z3

#define ROUTETAIL \
	ADDQ R10, R14; \
	DECQ AX; \
	JNZ  pixel; \
	ADDQ R9, R11; \
	DECQ R13; \
	JNZ  row; \
	ADDQ $64, SI; \
	ADDQ $64, DX; \
	ADDQ $64, BX; \
	SUBQ $16, CX; \
	JG   chunk; \
	VZEROUPPER; \
	RET

#define ROUTESET VMOVUPS Z3, K1, (R14)(R12*1)

#define ROUTEADD \
	VMOVUPS.Z (R14)(R12*1), K1, Z4; \
	VADDPS    Z3, Z4, Z4; \
	VMOVUPS   Z4, K1, (R14)(R12*1)

// func vecPoolRouteSetAVX512(dx, x, y, grad *float32, c, size, rowStride int)
TEXT ·vecPoolRouteSetAVX512(SB), NOSPLIT, $0-56
	ROUTEARGS
	ROUTEHEAD
	ROUTESET
	ROUTETAIL

// func vecPoolRouteAddAVX512(dx, x, y, grad *float32, c, size, rowStride int)
// As vecPoolRouteSetAVX512, adding to dx (overlapping windows).
TEXT ·vecPoolRouteAddAVX512(SB), NOSPLIT, $0-56
	ROUTEARGS
	ROUTEHEAD
	ROUTEADD
	ROUTETAIL

// func vecAdadeltaAVX512(p, grad, a, d *float32, n int, rho, omr, lr, eps float32)
// The Adadelta update of n values (omr = 1-rho), operation for operation
// as adadeltaUpdateGo.
TEXT ·vecAdadeltaAVX512(SB), NOSPLIT, $0-56
	MOVQ         p+0(FP), DI
	MOVQ         grad+8(FP), SI
	MOVQ         a+16(FP), DX
	MOVQ         d+24(FP), BX
	MOVQ         n+32(FP), CX
	VBROADCASTSS rho+40(FP), Z28
	VBROADCASTSS omr+44(FP), Z29
	VBROADCASTSS lr+48(FP), Z30
	VBROADCASTSS eps+52(FP), Z31

loop:
	CHUNKMASK
	VMOVUPS.Z (SI), K1, Z0 // g
	VMOVUPS.Z (DX), K1, Z1 // a
	VMOVUPS.Z (BX), K1, Z3 // d
	VMULPS    Z28, Z1, Z1  // a = rho*a + (omr*g)*g
	VMULPS    Z29, Z0, Z2
	VMULPS    Z0, Z2, Z2
	VADDPS    Z2, Z1, Z1
	VMOVUPS   Z1, K1, (DX)
	VADDPS    Z31, Z3, Z4  // upd = g*sqrt(d+eps) / sqrt(a+eps)
	VSQRTPS   Z4, Z4
	VMULPS    Z4, Z0, Z4
	VADDPS    Z31, Z1, Z5
	VSQRTPS   Z5, Z5
	VDIVPS    Z5, Z4, Z4
	VMOVUPS.Z (DI), K1, Z6 // p -= lr*upd
	VMULPS    Z30, Z4, Z7
	VSUBPS    Z7, Z6, Z6
	VMOVUPS   Z6, K1, (DI)
	VMULPS    Z28, Z3, Z3  // d = rho*d + (omr*upd)*upd
	VMULPS    Z29, Z4, Z8
	VMULPS    Z4, Z8, Z8
	VADDPS    Z8, Z3, Z3
	VMOVUPS   Z3, K1, (BX)
	ADDQ      $64, DI
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, BX
	SUBQ      $16, CX
	JG        loop
	VZEROUPPER
	RET

// Lane offsets 0..7 for the dropout counters.
DATA vecLanes<>+0(SB)/8, $0
DATA vecLanes<>+8(SB)/8, $1
DATA vecLanes<>+16(SB)/8, $2
DATA vecLanes<>+24(SB)/8, $3
DATA vecLanes<>+32(SB)/8, $4
DATA vecLanes<>+40(SB)/8, $5
DATA vecLanes<>+48(SB)/8, $6
DATA vecLanes<>+56(SB)/8, $7
GLOBL vecLanes<>(SB), RODATA|NOPTR, $64

// func vecDropoutAVX512(dst, src *float32, n int, z0, golden uint64, threshold uint32, scale float32)
// Dropout's mask (see dropoutMask) on n values, n a multiple of 32, the
// first at the start of a block of four: block k's SplitMix64 state is
// z0 + k*golden. Eight blocks (32 values) per iteration:
//
//	Z0  the eight states      Z1  their outputs h     Z2  scratch
//	Z3, Z4  h's 16-bit halves widened to 32 bits (values 0-15, 16-31)
//	Z5, Z6  the values        Z26 8*golden            Z27 scale
//	Z28 threshold             Z29, Z30  the multipliers
TEXT ·vecDropoutAVX512(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTQ golden+32(FP), Z26
	VPMULLQ      vecLanes<>(SB), Z26, Z0
	VPBROADCASTQ z0+24(FP), Z2
	VPADDQ       Z2, Z0, Z0
	VPSLLQ       $3, Z26, Z26
	MOVL         threshold+40(FP), AX
	VPBROADCASTD AX, Z28
	VBROADCASTSS scale+44(FP), Z27
	MOVQ         $0xbf58476d1ce4e5b9, AX
	VPBROADCASTQ AX, Z29
	MOVQ         $0x94d049bb133111eb, AX
	VPBROADCASTQ AX, Z30

loop:
	VPSRLQ        $30, Z0, Z2 // h = SplitMix64's output of each state
	VPXORQ        Z2, Z0, Z1
	VPMULLQ       Z29, Z1, Z1
	VPSRLQ        $27, Z1, Z2
	VPXORQ        Z2, Z1, Z1
	VPMULLQ       Z30, Z1, Z1
	VPSRLQ        $31, Z1, Z2
	VPXORQ        Z2, Z1, Z1
	VPADDQ        Z26, Z0, Z0
	VPMOVZXWD     Y1, Z3
	VEXTRACTI64X4 $1, Z1, Y2
	VPMOVZXWD     Y2, Z4
	VPCMPUD       $5, Z28, Z3, K1 // u >= threshold: kept
	VPCMPUD       $5, Z28, Z4, K2
	VMULPS        (SI), Z27, Z5
	VMULPS        64(SI), Z27, Z6
	VMOVAPS.Z     Z5, K1, Z5
	VMOVAPS.Z     Z6, K2, Z6
	VMOVUPS       Z5, (DI)
	VMOVUPS       Z6, 64(DI)
	ADDQ          $128, SI
	ADDQ          $128, DI
	SUBQ          $32, CX
	JG            loop
	VZEROUPPER
	RET
