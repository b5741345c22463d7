//go:build !purego

// SGEMM microkernels for gemm (see gemm.go).
//
// AVX-512 kernels: func gemmAVX512xR(t *gemmTile), R = 1..12 rows of up to
// NR = 32 columns. They implement the tile contract written on gemmTile in
// gemm.go: segments, bias and floor (fused ReLU) included. Field offsets
// come from go_asm.h (gemmTile_k and so on).
//
// AVX2 kernels (CPUs without AVX-512): the older flat signature
//
// func(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr,
//	c *float32, ldc uintptr, alpha, beta float32, nc int,
//	pa, pb, pas, pbs uintptr)
//
// computes one segment, C = alpha*A*B + beta*C, without bias or floor;
// gemm_amd64.go wraps them into the tile contract.
//
// Common to both (all strides in bytes):
//
//	A(i, p) is at a + i*rs + p*cs. One addressing scheme serves both
//	layouts of op(A): row-major A has rs = 4*lda, cs = 4; transposed A
//	(op(A) stored k-major) has rs = 4, cs = 4*lda; a convolution's image
//	read in place has rs = 4*C*stride, cs = 4. A kernel never reads a row
//	>= R, so A needs no packing or padding.
//	B(p, j) is at b + p*bks + 4*j. Row-major B is used in place (bks =
//	4*ldb); a transposed B is packed by the caller into panels of NR
//	columns (bks = 4*NR).
//	C(i, j) is at c + i*ldc + 4*j. Columns >= nc of B, C and the bias are
//	neither read nor written (AVX-512: k-masks K1/K2; AVX2: VMASKMOVPS).
//	pa, pb are two prefetch cursors: each k step prefetches the line at pa
//	and at pb into cache, then advances them by pas and pbs (64, or 0 for
//	an idle cursor). The caller points them at the data of its next block,
//	which the hardware prefetchers would fetch too late.
//
// Before the k loop a kernel also prefetches the rows of its C tile, which
// the epilogue reads (beta != 0) or overwrites.
//
// The macros below build kernels row by row: ROWSxx_R does one k step for R
// rows, Sxx_R(S) applies the epilogue step S to R rows, Zxx_R zeroes R rows'
// accumulators and PFCxx_R prefetches R rows of C. (The assembler does not
// check FP offsets inside macros; go vet checks the frame sizes and the
// tests the rest.)
//
// AVX-512 registers:
//
//	Z0..Z23   accumulators; row i owns Z(2i) (cols 0-15) and Z(2i+1) (16-31)
//	Z24, Z25  the row B(p, 0:32) of the current k step; bias in the epilogue
//	Z26       A(i, p) broadcast to all lanes
//	Z27       floor       Z28, Z29  alpha, beta      Z30, Z31  rows of C
//	K1, K2    column masks for cols 0-15 and 16-31 (from nc)
//
//	SI = a (rows 0-4), DI = a + 5*rs (rows 5-11), both advanced by cs
//	R8 = rs, R9 = 3*rs, R10 = 5*rs, R11 = cs, so the 12 rows are
//	(SI) (SI)(R8*1) (SI)(R8*2) (SI)(R9*1) (SI)(R8*4)
//	(DI) (DI)(R8*1) (DI)(R8*2) (DI)(R9*1) (DI)(R8*4) (DI)(R10*1) (DI)(R9*2)
//	DX = b advanced by R12 = bks, CX = k counter, segs-8(SP) = segments
//	left, BX = pa advanced by R14 = pas, R13 = pb advanced by AX = pbs;
//	between segments CX = t; in the epilogue CX = t, BX = c (advanced by
//	R13 = ldc), AX = the bias, then beta's bits.
//
// Per k step the 12-row kernel issues 2 vector loads of B, 12 broadcasts of
// A and 24 independent FMAs: enough chains to cover the 4-cycle FMA latency
// on two 512-bit pipes, within the load ports' budget. The C tile, 12 rows
// of 2 ZMM, is loaded and stored once per call, whatever the segments.
//
// AVX2 registers, NR = 16, R = 1..6:
//
//	Y0..Y11   accumulators; row i owns Y(2i) (cols 0-7) and Y(2i+1) (8-15)
//	Y12, Y13  B(p, 0:16)     Y14  broadcast A(i, p)     Y15  column mask
//	Rows are addressed as above (rows 0-4 off SI, row 5 is (SI)(R10*1));
//	R14 = the mask address, DI = nc (pbs during the loop), BX/R13 and
//	AX the prefetch cursors and pas. Partial tiles (nc < 16) run a second
//	loop with VMASKMOVPS; the masks come from gemmMaskTab<>: 16 words of
//	all ones, then 16 zeros, so the 16 words at offset 4*(16-nc) are ones
//	exactly for the first nc columns.

#include "textflag.h"
#include "go_asm.h"

// ---------------------------------------------------------------- AVX-512

#define B512 \
	VMOVUPS.Z (DX), K1, Z24; \
	VMOVUPS.Z 64(DX), K2, Z25; \
	ADDQ      R12, DX

#define F512(addr, z0, z1) \
	VBROADCASTSS addr, Z26; \
	VFMADD231PS  Z26, Z24, z0; \
	VFMADD231PS  Z26, Z25, z1

#define ROWS512_1 F512((SI), Z0, Z1)
#define ROWS512_2 ROWS512_1; F512((SI)(R8*1), Z2, Z3)
#define ROWS512_3 ROWS512_2; F512((SI)(R8*2), Z4, Z5)
#define ROWS512_4 ROWS512_3; F512((SI)(R9*1), Z6, Z7)
#define ROWS512_5 ROWS512_4; F512((SI)(R8*4), Z8, Z9)
#define ROWS512_6 ROWS512_5; F512((DI), Z10, Z11)
#define ROWS512_7 ROWS512_6; F512((DI)(R8*1), Z12, Z13)
#define ROWS512_8 ROWS512_7; F512((DI)(R8*2), Z14, Z15)
#define ROWS512_9 ROWS512_8; F512((DI)(R9*1), Z16, Z17)
#define ROWS512_10 ROWS512_9; F512((DI)(R8*4), Z18, Z19)
#define ROWS512_11 ROWS512_10; F512((DI)(R10*1), Z20, Z21)
#define ROWS512_12 ROWS512_11; F512((DI)(R9*2), Z22, Z23)

// The end of a row: + bias, max with the floor (the accumulator is the
// second source, so a NaN stays NaN), masked store, next row.
#define END512(z0, z1) \
	VADDPS  Z24, z0, z0; \
	VADDPS  Z25, z1, z1; \
	VMAXPS  z0, Z27, z0; \
	VMAXPS  z1, Z27, z1; \
	VMOVUPS z0, K1, (BX); \
	VMOVUPS z1, K2, 64(BX); \
	ADDQ    R13, BX

// C row = alpha*acc + beta*C, then END512.
#define S512B(z0, z1) \
	VMULPS      Z28, z0, z0; \
	VMULPS      Z28, z1, z1; \
	VMOVUPS.Z   (BX), K1, Z30; \
	VMOVUPS.Z   64(BX), K2, Z31; \
	VFMADD231PS Z29, Z30, z0; \
	VFMADD231PS Z29, Z31, z1; \
	END512(z0, z1)

// C row = alpha*acc (beta == 0: C is not read), then END512.
#define S512Z(z0, z1) \
	VMULPS Z28, z0, z0; \
	VMULPS Z28, z1, z1; \
	END512(z0, z1)

#define S512_1(S) S(Z0, Z1)
#define S512_2(S) S512_1(S); S(Z2, Z3)
#define S512_3(S) S512_2(S); S(Z4, Z5)
#define S512_4(S) S512_3(S); S(Z6, Z7)
#define S512_5(S) S512_4(S); S(Z8, Z9)
#define S512_6(S) S512_5(S); S(Z10, Z11)
#define S512_7(S) S512_6(S); S(Z12, Z13)
#define S512_8(S) S512_7(S); S(Z14, Z15)
#define S512_9(S) S512_8(S); S(Z16, Z17)
#define S512_10(S) S512_9(S); S(Z18, Z19)
#define S512_11(S) S512_10(S); S(Z20, Z21)
#define S512_12(S) S512_11(S); S(Z22, Z23)

#define Z512_1 VPXORD Z0, Z0, Z0; VPXORD Z1, Z1, Z1
#define Z512_2 Z512_1; VPXORD Z2, Z2, Z2; VPXORD Z3, Z3, Z3
#define Z512_3 Z512_2; VPXORD Z4, Z4, Z4; VPXORD Z5, Z5, Z5
#define Z512_4 Z512_3; VPXORD Z6, Z6, Z6; VPXORD Z7, Z7, Z7
#define Z512_5 Z512_4; VPXORD Z8, Z8, Z8; VPXORD Z9, Z9, Z9
#define Z512_6 Z512_5; VPXORD Z10, Z10, Z10; VPXORD Z11, Z11, Z11
#define Z512_7 Z512_6; VPXORD Z12, Z12, Z12; VPXORD Z13, Z13, Z13
#define Z512_8 Z512_7; VPXORD Z14, Z14, Z14; VPXORD Z15, Z15, Z15
#define Z512_9 Z512_8; VPXORD Z16, Z16, Z16; VPXORD Z17, Z17, Z17
#define Z512_10 Z512_9; VPXORD Z18, Z18, Z18; VPXORD Z19, Z19, Z19
#define Z512_11 Z512_10; VPXORD Z20, Z20, Z20; VPXORD Z21, Z21, Z21
#define Z512_12 Z512_11; VPXORD Z22, Z22, Z22; VPXORD Z23, Z23, Z23

// Prefetch one row of the C tile (BX = c, R13 = ldc); NR = 32 floats span
// two cache lines (three when C is not aligned; the third is not worth it).
#define PFC1 PREFETCHT0 (BX); PREFETCHT0 64(BX); ADDQ R13, BX
#define PFC_2 PFC1; PFC1
#define PFC_3 PFC_2; PFC1
#define PFC_4 PFC_3; PFC1
#define PFC_5 PFC_4; PFC1
#define PFC_6 PFC_5; PFC1
#define PFC_7 PFC_6; PFC1
#define PFC_8 PFC_7; PFC1
#define PFC_9 PFC_8; PFC1
#define PFC_10 PFC_9; PFC1
#define PFC_11 PFC_10; PFC1
#define PFC_12 PFC_11; PFC1

// Loads the tile's fields into the registers described above (DX = t
// until the end) and prefetches the C tile with PFC.
#define ARGS512(PFC) \
	MOVQ  t+0(FP), DX; \
	MOVQ  gemmTile_nc(DX), CX; \
	MOVQ  $1, AX; \
	SHLQ  CX, AX; \
	DECQ  AX; \
	KMOVW AX, K1; \
	SHRQ  $16, AX; \
	KMOVW AX, K2; \
	MOVQ  gemmTile_segs(DX), AX; \
	MOVQ  AX, segs-8(SP); \
	MOVQ  gemmTile_k(DX), CX; \
	MOVQ  gemmTile_a(DX), SI; \
	MOVQ  gemmTile_rs(DX), R8; \
	MOVQ  gemmTile_cs(DX), R11; \
	MOVQ  gemmTile_bks(DX), R12; \
	MOVQ  gemmTile_c(DX), BX; \
	MOVQ  gemmTile_ldc(DX), R13; \
	LEAQ  (R8)(R8*2), R9; \
	LEAQ  (R8)(R8*4), R10; \
	LEAQ  (SI)(R10*1), DI; \
	PFC; \
	MOVQ  gemmTile_pa(DX), BX; \
	MOVQ  gemmTile_pb(DX), R13; \
	MOVQ  gemmTile_pas(DX), R14; \
	MOVQ  gemmTile_pbs(DX), AX; \
	MOVQ  gemmTile_b(DX), DX

// The body of an AVX-512 kernel after ARGS512: zero the accumulators, run
// the k loop over every segment, then the epilogue selected by beta.
#define KERNEL512(ZERO, ROWS, STORE) \
	ZERO; \
loop: \
	B512; \
	PREFETCHT0 (BX); \
	ADDQ       R14, BX; \
	PREFETCHT0 (R13); \
	ADDQ       AX, R13; \
	ROWS; \
	ADDQ       R11, SI; \
	ADDQ       R11, DI; \
	DECQ       CX; \
	JNZ        loop; \
	DECQ       segs-8(SP); \
	JZ         epilogue; \
	MOVQ       t+0(FP), CX; \
	ADDQ       gemmTile_aSeg(CX), SI; \
	ADDQ       gemmTile_aSeg(CX), DI; \
	ADDQ       gemmTile_bSeg(CX), DX; \
	MOVQ       gemmTile_k(CX), CX; \
	JMP        loop; \
epilogue: \
	MOVQ         t+0(FP), CX; \
	MOVQ         gemmTile_c(CX), BX; \
	MOVQ         gemmTile_ldc(CX), R13; \
	VBROADCASTSS gemmTile_alpha(CX), Z28; \
	VBROADCASTSS gemmTile_beta(CX), Z29; \
	VBROADCASTSS gemmTile_floor(CX), Z27; \
	VPXORD       Z24, Z24, Z24; \
	VPXORD       Z25, Z25, Z25; \
	MOVQ         gemmTile_bias(CX), AX; \
	TESTQ        AX, AX; \
	JZ           nobias; \
	VMOVUPS.Z    (AX), K1, Z24; \
	VMOVUPS.Z    64(AX), K2, Z25; \
nobias: \
	MOVL         gemmTile_beta(CX), AX; \
	ANDL         $0x7fffffff, AX; \
	JZ           betazero; \
	STORE(S512B); \
	VZEROUPPER; \
	RET; \
betazero: \
	STORE(S512Z); \
	VZEROUPPER; \
	RET

TEXT ·gemmAVX512x1(SB), NOSPLIT, $8-8
	ARGS512(PFC1)
	KERNEL512(Z512_1, ROWS512_1, S512_1)

TEXT ·gemmAVX512x2(SB), NOSPLIT, $8-8
	ARGS512(PFC_2)
	KERNEL512(Z512_2, ROWS512_2, S512_2)

TEXT ·gemmAVX512x3(SB), NOSPLIT, $8-8
	ARGS512(PFC_3)
	KERNEL512(Z512_3, ROWS512_3, S512_3)

TEXT ·gemmAVX512x4(SB), NOSPLIT, $8-8
	ARGS512(PFC_4)
	KERNEL512(Z512_4, ROWS512_4, S512_4)

TEXT ·gemmAVX512x5(SB), NOSPLIT, $8-8
	ARGS512(PFC_5)
	KERNEL512(Z512_5, ROWS512_5, S512_5)

TEXT ·gemmAVX512x6(SB), NOSPLIT, $8-8
	ARGS512(PFC_6)
	KERNEL512(Z512_6, ROWS512_6, S512_6)

TEXT ·gemmAVX512x7(SB), NOSPLIT, $8-8
	ARGS512(PFC_7)
	KERNEL512(Z512_7, ROWS512_7, S512_7)

TEXT ·gemmAVX512x8(SB), NOSPLIT, $8-8
	ARGS512(PFC_8)
	KERNEL512(Z512_8, ROWS512_8, S512_8)

TEXT ·gemmAVX512x9(SB), NOSPLIT, $8-8
	ARGS512(PFC_9)
	KERNEL512(Z512_9, ROWS512_9, S512_9)

TEXT ·gemmAVX512x10(SB), NOSPLIT, $8-8
	ARGS512(PFC_10)
	KERNEL512(Z512_10, ROWS512_10, S512_10)

TEXT ·gemmAVX512x11(SB), NOSPLIT, $8-8
	ARGS512(PFC_11)
	KERNEL512(Z512_11, ROWS512_11, S512_11)

TEXT ·gemmAVX512x12(SB), NOSPLIT, $8-8
	ARGS512(PFC_12)
	KERNEL512(Z512_12, ROWS512_12, S512_12)

// ------------------------------------------------------------------- AVX2

DATA gemmMaskTab<>+0(SB)/8, $-1
DATA gemmMaskTab<>+8(SB)/8, $-1
DATA gemmMaskTab<>+16(SB)/8, $-1
DATA gemmMaskTab<>+24(SB)/8, $-1
DATA gemmMaskTab<>+32(SB)/8, $-1
DATA gemmMaskTab<>+40(SB)/8, $-1
DATA gemmMaskTab<>+48(SB)/8, $-1
DATA gemmMaskTab<>+56(SB)/8, $-1
DATA gemmMaskTab<>+64(SB)/8, $0
DATA gemmMaskTab<>+72(SB)/8, $0
DATA gemmMaskTab<>+80(SB)/8, $0
DATA gemmMaskTab<>+88(SB)/8, $0
DATA gemmMaskTab<>+96(SB)/8, $0
DATA gemmMaskTab<>+104(SB)/8, $0
DATA gemmMaskTab<>+112(SB)/8, $0
DATA gemmMaskTab<>+120(SB)/8, $0
GLOBL gemmMaskTab<>(SB), RODATA|NOPTR, $128

#define B2 \
	VMOVUPS (DX), Y12; \
	VMOVUPS 32(DX), Y13; \
	ADDQ    R12, DX

#define B2M \
	VMOVUPS    (R14), Y15; \
	VMASKMOVPS (DX), Y15, Y12; \
	VMOVUPS    32(R14), Y15; \
	VMASKMOVPS 32(DX), Y15, Y13; \
	ADDQ       R12, DX

#define F2(addr, y0, y1) \
	VBROADCASTSS addr, Y14; \
	VFMADD231PS  Y14, Y12, y0; \
	VFMADD231PS  Y14, Y13, y1

#define ROWS2_1 F2((SI), Y0, Y1)
#define ROWS2_2 ROWS2_1; F2((SI)(R8*1), Y2, Y3)
#define ROWS2_3 ROWS2_2; F2((SI)(R8*2), Y4, Y5)
#define ROWS2_4 ROWS2_3; F2((SI)(R9*1), Y6, Y7)
#define ROWS2_5 ROWS2_4; F2((SI)(R8*4), Y8, Y9)
#define ROWS2_6 ROWS2_5; F2((SI)(R10*1), Y10, Y11)

#define Z2_1 VXORPS Y0, Y0, Y0; VXORPS Y1, Y1, Y1
#define Z2_2 Z2_1; VXORPS Y2, Y2, Y2; VXORPS Y3, Y3, Y3
#define Z2_3 Z2_2; VXORPS Y4, Y4, Y4; VXORPS Y5, Y5, Y5
#define Z2_4 Z2_3; VXORPS Y6, Y6, Y6; VXORPS Y7, Y7, Y7
#define Z2_5 Z2_4; VXORPS Y8, Y8, Y8; VXORPS Y9, Y9, Y9
#define Z2_6 Z2_5; VXORPS Y10, Y10, Y10; VXORPS Y11, Y11, Y11

// Epilogue row operations. M2 scales by alpha (Y12); then Y12 is scratch,
// Y13 = beta, Y14/Y15 = column masks.
#define M2(y0, y1) VMULPS Y12, y0, y0; VMULPS Y12, y1, y1

#define S2B(y0, y1) \
	VMOVUPS     (BX), Y12; \
	VFMADD231PS Y13, Y12, y0; \
	VMOVUPS     32(BX), Y12; \
	VFMADD231PS Y13, Y12, y1; \
	VMOVUPS     y0, (BX); \
	VMOVUPS     y1, 32(BX); \
	ADDQ        R13, BX

#define S2Z(y0, y1) \
	VMOVUPS y0, (BX); \
	VMOVUPS y1, 32(BX); \
	ADDQ    R13, BX

#define S2MB(y0, y1) \
	VMASKMOVPS  (BX), Y14, Y12; \
	VFMADD231PS Y13, Y12, y0; \
	VMASKMOVPS  32(BX), Y15, Y12; \
	VFMADD231PS Y13, Y12, y1; \
	VMASKMOVPS  y0, Y14, (BX); \
	VMASKMOVPS  y1, Y15, 32(BX); \
	ADDQ        R13, BX

#define S2MZ(y0, y1) \
	VMASKMOVPS y0, Y14, (BX); \
	VMASKMOVPS y1, Y15, 32(BX); \
	ADDQ       R13, BX

#define S2_1(S) S(Y0, Y1)
#define S2_2(S) S2_1(S); S(Y2, Y3)
#define S2_3(S) S2_2(S); S(Y4, Y5)
#define S2_4(S) S2_3(S); S(Y6, Y7)
#define S2_5(S) S2_4(S); S(Y8, Y9)
#define S2_6(S) S2_5(S); S(Y10, Y11)

// One row of 16 floats is one or two cache lines.
#define PFC2 PREFETCHT0 (BX); PREFETCHT0 63(BX); ADDQ R13, BX
#define PFC2_2 PFC2; PFC2
#define PFC2_3 PFC2_2; PFC2
#define PFC2_4 PFC2_3; PFC2
#define PFC2_5 PFC2_4; PFC2
#define PFC2_6 PFC2_5; PFC2

#define ARGS2(PFC) \
	MOVQ nc+72(FP), DI; \
	LEAQ gemmMaskTab<>+64(SB), R14; \
	LEAQ 0(DI*4), AX; \
	SUBQ AX, R14; \
	MOVQ k+0(FP), CX; \
	MOVQ a+8(FP), SI; \
	MOVQ rs+16(FP), R8; \
	MOVQ cs+24(FP), R11; \
	MOVQ b+32(FP), DX; \
	MOVQ bks+40(FP), R12; \
	MOVQ c+48(FP), BX; \
	MOVQ ldc+56(FP), R13; \
	PFC; \
	MOVQ pa+80(FP), BX; \
	MOVQ pb+88(FP), R13; \
	MOVQ pas+96(FP), AX; \
	LEAQ (R8)(R8*2), R9; \
	LEAQ (R8)(R8*4), R10

#define KERNEL2(ZERO, ROWS, STORE) \
	ZERO; \
	CMPQ DI, $16; \
	MOVQ pbs+104(FP), DI; \
	JNE  masked; \
full: \
	B2; \
	PREFETCHT0 (BX); \
	ADDQ       AX, BX; \
	PREFETCHT0 (R13); \
	ADDQ       DI, R13; \
	ROWS; \
	ADDQ       R11, SI; \
	DECQ       CX; \
	JNZ        full; \
	JMP        epilogue; \
masked: \
	B2M; \
	PREFETCHT0 (BX); \
	ADDQ       AX, BX; \
	PREFETCHT0 (R13); \
	ADDQ       DI, R13; \
	ROWS; \
	ADDQ       R11, SI; \
	DECQ       CX; \
	JNZ        masked; \
epilogue: \
	MOVQ         nc+72(FP), DI; \
	MOVQ         c+48(FP), BX; \
	MOVQ         ldc+56(FP), R13; \
	MOVL         beta+68(FP), AX; \
	VBROADCASTSS alpha+64(FP), Y12; \
	STORE(M2); \
	VBROADCASTSS beta+68(FP), Y13; \
	VMOVUPS      (R14), Y14; \
	VMOVUPS      32(R14), Y15; \
	ANDL         $0x7fffffff, AX; \
	JZ           betazero; \
	CMPQ         DI, $16; \
	JNE          maskedbeta; \
	STORE(S2B); \
	VZEROUPPER; \
	RET; \
maskedbeta: \
	STORE(S2MB); \
	VZEROUPPER; \
	RET; \
betazero: \
	CMPQ DI, $16; \
	JNE  maskedzero; \
	STORE(S2Z); \
	VZEROUPPER; \
	RET; \
maskedzero: \
	STORE(S2MZ); \
	VZEROUPPER; \
	RET

TEXT ·gemmAVX2x1(SB), NOSPLIT, $0-112
	ARGS2(PFC2)
	KERNEL2(Z2_1, ROWS2_1, S2_1)

TEXT ·gemmAVX2x2(SB), NOSPLIT, $0-112
	ARGS2(PFC2_2)
	KERNEL2(Z2_2, ROWS2_2, S2_2)

TEXT ·gemmAVX2x3(SB), NOSPLIT, $0-112
	ARGS2(PFC2_3)
	KERNEL2(Z2_3, ROWS2_3, S2_3)

TEXT ·gemmAVX2x4(SB), NOSPLIT, $0-112
	ARGS2(PFC2_4)
	KERNEL2(Z2_4, ROWS2_4, S2_4)

TEXT ·gemmAVX2x5(SB), NOSPLIT, $0-112
	ARGS2(PFC2_5)
	KERNEL2(Z2_5, ROWS2_5, S2_5)

TEXT ·gemmAVX2x6(SB), NOSPLIT, $0-112
	ARGS2(PFC2_6)
	KERNEL2(Z2_6, ROWS2_6, S2_6)
