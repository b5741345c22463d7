package engine

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// This file holds the package's single-precision matrix product: a
// Goto/BLIS-style blocked loop around register-tile microkernels written in
// assembly (gemm_amd64.s: AVX-512 tiles of up to 12x32, AVX2 tiles of up to
// 6x16) with a pure-Go fallback (gemm_generic.go, also under -tags purego).
// The kernel family is chosen once from the CPU's features.
//
// The microkernels address op(A) as A(i, p) = a[i*rs + p*cs] and op(B) as
// B(p, j) = b[p*bks + j], so both layouts of A (plain and transposed) and a
// plain B are read in place, and the last rows of a matrix go to kernels of
// fewer rows, the last columns through masks: nothing is padded. Only a
// transposed B is copied, into panels of NR columns. Small products
// (single-image prediction) thus go straight to the kernels.
//
// Loop order inside one worker, for its rows [i0, i1), columns [j0, j1) and
// depth [p0, p1):
//
//	for ic in steps of MC rows (all rows if C is small)
//	  for pc in steps of KC               A block MC x KC <= 256 KiB, in L2
//	    for jc in steps of NR             B panel KC x NR, in L1
//	      for ir in steps of MR (or fewer rows at the end)
//	        microkernel: C[ir:ir+MR, jc:jc+NR] (+)= A[ir:, pc:] B[pc:, jc:]
//
// The first depth block applies beta, later ones accumulate. While a block
// runs, its kernels prefetch the next block of A (and B) one line per k
// step: A's MR rows are MR interleaved streams, and for a transposed A
// (weight gradients) a strided walk, which the hardware prefetchers follow
// too late.
//
// Work is cut into parts that depend only on the shape and GOMAXPROCS, and
// every element of C is summed in a fixed order, so results are
// reproducible bit for bit:
//
//   - by rows (M) when m >= n; a transposed B is packed once and shared;
//   - by columns (N) otherwise;
//   - by depth (K) when k dwarfs m and n (weight gradients, where M x N is a
//     few hundred by a few dozen and K is the batch's pixels): part 0
//     accumulates into C, each later part into a private m x n buffer
//     that is then added to C in part order.
//
// A large transposed B that is not shared is packed by each part panel by
// panel, just before use, into a buffer that stays in cache.
//
// The parts run on the package's worker pool (parallel.go). The per-call
// state (packed B, partial sums) lives in pooled jobs, so a product
// allocates nothing in steady state.
//
// The kernels can also finish a tile with a bias row and a floor (a fused
// ReLU), and sum over several segments of A and B with their own strides:
// the convolutions (conv_gemm.go) read their images in place that way.

// gemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(X) is X or its transpose. C is m x n, op(A) is m x k and op(B) is k x n;
// lda, ldb and ldc are the row strides. Every matrix product in the package
// goes through here. beta == 0 overwrites C without reading it.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmWith(gemmDefault, procs(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, gemmEpilogue{})
}

// gemmBias computes C = op(A)*op(B) + bias (bias added to every row),
// followed by max(·, 0) if relu: a Dense layer's forward pass in one go.
func gemmBias(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, bias []float32, relu bool, c []float32, ldc int) {
	gemmWith(gemmDefault, procs(), transA, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc, gemmEpilogue{bias[:n], relu})
}

// gemmEpilogue is what the kernels apply to a finished tile after alpha
// and beta: C(i, j) = C(i, j) + bias[j], then max(·, 0) if relu.
type gemmEpilogue struct {
	bias []float32 // nil: none
	relu bool
}

func (e gemmEpilogue) active() bool { return e.bias != nil || e.relu }

// floor is the kernels' form of the ReLU: the value results are raised to.
func (e gemmEpilogue) floor() float32 { return reluFloor(e.relu) }

func reluFloor(relu bool) float32 {
	if relu {
		return 0
	}
	return float32(math.Inf(-1))
}

// gemmTile is one call of a microkernel: a tile of r <= MR rows and nc <= NR
// columns, with every address and stride it needs (strides in bytes). The
// depth is segs segments of k steps each:
//
//	C(i, j) = max(alpha * Σ_{s<segs} Σ_{p<k} A(i, s, p) B(s, p, j)
//	              + beta*C(i, j) + bias[j], floor)
//	A(i, s, p) at a + i*rs + s*(k*cs + aSeg) + p*cs
//	B(s, p, j) at b + s*(k*bks + bSeg) + p*bks + 4j
//	C(i, j)    at c + i*ldc + 4j
//
// so aSeg and bSeg are what a cursor that has walked a segment must add to
// reach the next one (zero when segments are contiguous). A plain product
// is one segment. beta == 0 (or -0) means C is not read, so NaNs in it are
// overwritten; bias may be nil; floor is -Inf when there is no ReLU. The
// assembly kernels read the fields through go_asm.h: keep the names.
type gemmTile struct {
	a, b, c   unsafe.Pointer
	bias      unsafe.Pointer
	k, segs   int
	rs, cs    uintptr
	aSeg      uintptr
	bks, bSeg uintptr
	ldc       uintptr
	nc        int
	alpha     float32
	beta      float32
	floor     float32
	pa, pb    uintptr // prefetch cursors: see gemm_amd64.s
	pas, pbs  uintptr
}

// gemmMaxMR bounds the rows of any kernel's tile.
const gemmMaxMR = 12

// The kernel families.
const (
	gemmGeneric = iota // gemm_generic.go
	gemmAVX2           // gemm_amd64.s, adapted in gemm_amd64.go
	gemmAVX512         // gemm_amd64.s
)

// gemmKernel is one family of microkernels with its blocking. A family has
// a kernel for every row count 1..mr.
type gemmKernel struct {
	name   string
	family int
	mr, nr int // full tile
	kc, mc int // cache blocking: depth and rows per block
}

func newGemmKernel(name string, family, mr, nr, kc, mc int) *gemmKernel {
	if mr < 1 || mr > gemmMaxMR || mc%mr != 0 {
		panic("engine: bad gemm kernel " + name)
	}
	return &gemmKernel{name: name, family: family, mr: mr, nr: nr, kc: kc, mc: mc}
}

// micro computes tile t of r rows, 1 <= r <= mr. The calls are direct (a
// switch, not a table of functions), so that t, on the caller's stack,
// does not escape to the heap.
func (g *gemmKernel) micro(r int, t *gemmTile) {
	switch g.family {
	case gemmAVX512:
		gemmMicroAVX512(r, t)
	case gemmAVX2:
		gemmMicroAVX2(r, t)
	default:
		gemmGenericMicro(r, t)
	}
}

// gemmDefault is the kernel family gemm uses: the fastest one the CPU
// runs (chosen in gemm_amd64.go / gemm_other.go).
var gemmDefault = gemmKernels()[0]

// Thresholds for going parallel: below gemmParallelMin multiply-adds
// (about 10µs of work) a product runs on the calling goroutine, since waking
// a worker costs several µs, and far more on a loaded machine. Otherwise it
// is cut into up to gemmPartsPerProc parts per worker of at least
// gemmMinPart multiply-adds; a K split gives every part at least
// gemmMinKPart depth. (Variables so that the tests can force splits.)
var (
	gemmParallelMin  = 1 << 20
	gemmMinPart      = 1 << 18
	gemmPartsPerProc = 4
	gemmMinKPart     = 256
)

// Cache blocking: a worker whose part of C has at most gemmSmallC elements
// takes all its rows in one block; a block of A is at most gemmABlock bytes.
// A transposed B of at most gemmPackShared floats is packed once per call.
var (
	gemmSmallC     = 1 << 16
	gemmABlock     = 256 << 10
	gemmPackShared = 1 << 16
)

// How the work of one product is divided between workers.
const (
	gemmSplitM = iota
	gemmSplitN
	gemmSplitK
)

// gemmArgs is one product, with the slices turned into base pointers.
type gemmArgs struct {
	kern           *gemmKernel
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        unsafe.Pointer
	lda, ldb, ldc  int
	packed         unsafe.Pointer // op(B) in panels of NR columns when transB
	bias           unsafe.Pointer // epilogue, applied on the last depth block
	floor          float32
}

// gemmJob is a product in flight, shared by its workers.
type gemmJob struct {
	gemmArgs
	split, parts int
	step         int       // rows (M), panels (N) or depth (K) per part
	packBuf      []float32 // packed op(B), or one panel buffer per part
	jit          int       // size of a part's panel buffer, if any
	partial      []float32 // K split: (parts-1) blocks of m x n
	task         *parallelTask
}

func gemmWith(kern *gemmKernel, procs int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi gemmEpilogue) {
	gemmCheck(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if epi.bias != nil && len(epi.bias) < n {
		panic("engine: gemm: bias shorter than a row")
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		gemmScale(m, n, beta, c, ldc)
		gemmFinish(m, n, c, ldc, epi)
		return
	}
	args := gemmArgs{
		kern: kern, transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta,
		a: unsafe.Pointer(&a[0]), b: unsafe.Pointer(&b[0]), c: unsafe.Pointer(&c[0]),
		lda: lda, ldb: ldb, ldc: ldc, floor: epi.floor(),
	}
	if epi.bias != nil {
		args.bias = unsafe.Pointer(&epi.bias[0])
	}
	mt := (m + kern.mr - 1) / kern.mr
	nt := (n + kern.nr - 1) / kern.nr
	// Several parts per worker balance the load (they are claimed
	// dynamically); the parts themselves depend only on the shape and procs.
	split, parts := gemmSplitM, 1
	if procs > 1 && m*n*k >= gemmParallelMin {
		maxParts := max(1, min(gemmPartsPerProc*procs, m*n*k/max(1, gemmMinPart)))
		switch {
		case k >= 4*max(m, n) && k >= 2*gemmMinKPart && m*n <= 1<<20:
			// Each later part needs an m x n buffer: one part per
			// worker, and at most 16 MiB of buffers.
			split, parts = gemmSplitK, min(procs, k/gemmMinKPart, 1+(4<<20)/(m*n))
		case m >= n && mt >= 2:
			split, parts = gemmSplitM, min(maxParts, mt)
		case nt >= 2:
			split, parts = gemmSplitN, min(maxParts, nt)
		case mt >= 2:
			split, parts = gemmSplitM, min(maxParts, mt)
		}
		parts = min(max(parts, 1), 1<<15)
	}
	if parts == 1 && !transB {
		// Small or single-threaded product with nothing to pack: no job.
		args.block(0, m, 0, n, 0, k, args.c, ldc, beta, true, nil)
		return
	}
	j := gemmGetJob()
	j.gemmArgs = args
	j.split, j.parts = split, parts
	switch split {
	case gemmSplitM:
		j.step = (mt + parts - 1) / parts * kern.mr
	case gemmSplitN:
		j.step = (nt + parts - 1) / parts
	case gemmSplitK:
		j.step = (k + parts - 1) / parts
		j.partial = grow(j.partial, (parts-1)*m*n)
	}
	j.jit = 0
	if transB {
		size := nt * kern.nr * k
		if (split == gemmSplitM && parts > 1) || size <= gemmPackShared {
			// Pack all of op(B) once: every part reads all of it, or it
			// is small.
			j.packBuf = grow(j.packBuf, size+16)
			j.packed = gemmAlign(j.packBuf)
			for q := 0; q < nt; q++ {
				j.packPanel(unsafe.Add(j.packed, q*k*kern.nr*4), q, 0, k)
			}
		} else {
			// Each part packs a panel just before using it, into a
			// buffer of its own that stays in cache.
			j.jit = kern.kc*kern.nr + 16
			j.packBuf = grow(j.packBuf, parts*j.jit)
		}
	}
	j.task.run(parts, procs)
	if split == gemmSplitK {
		// C += alpha*Σ_p of each later part, in part order; then the
		// epilogue, which the parts left out.
		for p := 1; p < parts; p++ {
			part := j.partial[(p-1)*m*n : p*m*n]
			for i := 0; i < m; i++ {
				addTo(c[i*ldc:i*ldc+n], part[i*n:(i+1)*n])
			}
		}
		gemmFinish(m, n, c, ldc, epi)
	}
	j.a, j.b, j.c, j.packed, j.bias = nil, nil, nil, nil, nil // drop the caller's slices
	gemmPutJob(j)
}

// run computes part p of the job.
func (j *gemmJob) run(p, _ int) {
	m, n, k := j.m, j.n, j.k
	var jit unsafe.Pointer
	if j.jit > 0 {
		jit = gemmAlign(j.packBuf[p*j.jit : (p+1)*j.jit])
	}
	switch j.split {
	case gemmSplitM:
		i0 := min(p*j.step, m)
		i1 := min(i0+j.step, m)
		j.block(i0, i1, 0, n, 0, k, j.c, j.ldc, j.beta, true, jit)
	case gemmSplitN:
		nr := j.kern.nr
		q0 := p * j.step
		q1 := min(q0+j.step, (n+nr-1)/nr)
		j.block(0, m, q0*nr, min(q1*nr, n), 0, k, j.c, j.ldc, j.beta, true, jit)
	case gemmSplitK:
		p0 := min(p*j.step, k)
		p1 := min(p0+j.step, k)
		if p == 0 {
			j.block(0, m, 0, n, p0, p1, j.c, j.ldc, j.beta, false, jit)
			return
		}
		part := j.partial[(p-1)*m*n : p*m*n]
		if p0 >= p1 {
			clear32(part)
			return
		}
		j.block(0, m, 0, n, p0, p1, unsafe.Pointer(&part[0]), n, 0, false, jit)
	}
}

// gemmAlign returns the first cache-line aligned address in buf, which
// has 16 floats to spare.
func gemmAlign(buf []float32) unsafe.Pointer {
	p := unsafe.Pointer(&buf[0])
	return unsafe.Add(p, (64-uintptr(p)%64)%64)
}

// block computes rows [i0, i1) and columns [j0, j1) of
// alpha*Σ_{p0<=p<p1} A(i,p)B(p,j) + beta*C into c (row stride ldc), and
// applies the epilogue if finish. j0 is a multiple of NR. A transposed B is
// read from g.packed, or packed panel by panel into jit if that is not nil.
func (g *gemmArgs) block(i0, i1, j0, j1, p0, p1 int, c unsafe.Pointer, ldc int, beta float32, finish bool, jit unsafe.Pointer) {
	if i0 >= i1 || j0 >= j1 || p0 >= p1 {
		return
	}
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	var rs, cs uintptr // A(i, p) is at a + 4*(i*rs + p*cs)
	if g.transA {
		rs, cs = 1, uintptr(g.lda)
	} else {
		rs, cs = uintptr(g.lda), 1
	}
	bks := uintptr(g.ldb) * 4
	if g.transB {
		bks = uintptr(nr) * 4
	}
	// Blocks of mc rows, or all rows when this part of C is small, so that
	// a long depth is streamed once rather than once per row block.
	mc := kern.mc
	if (i1-i0)*(j1-j0) <= gemmSmallC {
		mc = i1 - i0
	}
	// Split the depth into equal blocks of at most kc, and small enough
	// that an mc x kc block of A (and the next one, being prefetched) stays
	// in L2.
	kcMax := max(kern.mr, min(kern.kc, gemmABlock/(4*min(mc, i1-i0))))
	kc := p1 - p0
	if nb := (kc + kcMax - 1) / kcMax; nb > 1 {
		kc = (kc + nb - 1) / nb
	}
	t := gemmTile{segs: 1, rs: rs * 4, cs: cs * 4, bks: bks, ldc: uintptr(ldc) * 4, alpha: g.alpha}
	for ic := i0; ic < i1; ic += mc {
		ie := min(ic+mc, i1)
		for pc := p0; pc < p1; pc += kc {
			kk := min(kc, p1-pc)
			t.k, t.beta = kk, beta
			if pc != p0 {
				t.beta = 1
			}
			t.floor, t.bias = float32(math.Inf(-1)), nil
			if finish && pc+kk == p1 {
				t.floor = g.floor
			}
			// While this block runs, the kernels prefetch the next one's A
			// (and B, if the depth changes).
			var pf gemmPrefetch
			if pc+kk < p1 {
				pf = g.prefetchFor(ic, ie, pc+kk, min(pc+2*kk, p1), j0, j1)
			} else if ie < i1 {
				pf = g.prefetchFor(ie, min(ie+mc, i1), p0, min(p0+kc, p1), -1, -1)
			}
			for jc := j0; jc < j1; jc += nr {
				t.nc = min(nr, j1-jc)
				switch {
				case jit != nil:
					g.packPanel(jit, jc/nr, pc, pc+kk)
					t.b = jit
				case g.transB:
					t.b = unsafe.Add(g.packed, ((jc/nr)*g.k+pc)*nr*4)
				default:
					t.b = unsafe.Add(g.b, (pc*g.ldb+jc)*4)
				}
				if finish && pc+kk == p1 && g.bias != nil {
					t.bias = unsafe.Add(g.bias, jc*4)
				}
				for ir := ic; ir < ie; {
					r := min(ie-ir, mr)
					t.a = unsafe.Add(g.a, 4*(uintptr(ir)*rs+uintptr(pc)*cs))
					t.c = unsafe.Add(c, (ir*ldc+jc)*4)
					t.pa, t.pb, t.pas, t.pbs = pf.a, pf.b, pf.as, pf.bs
					kern.micro(r, &t)
					pf.advance(kk)
					ir += r
				}
			}
		}
	}
}

// gemmPrefetch is a pair of prefetch cursors over contiguous byte ranges,
// each advanced by one cache line per k step until it passes its end. An
// inactive cursor points at gemmPrefetchIdle and does not move. The cursors
// are plain addresses, as they run past the ends of the ranges: the
// matrices are kept alive by the job, and prefetching never faults.
type gemmPrefetch struct {
	a, b       uintptr
	aEnd, bEnd uintptr
	as, bs     uintptr
}

var gemmPrefetchIdle [16]float32

// prefetchFor returns cursors over A's rows [i0, i1) x depths [p0, p1) and,
// unless j0 < 0, B's depths [p0, p1) x columns [j0, j1). A range is skipped
// when it is less than half useful (rows far apart).
func (g *gemmArgs) prefetchFor(i0, i1, p0, p1, j0, j1 int) gemmPrefetch {
	idle := uintptr(unsafe.Pointer(&gemmPrefetchIdle[0]))
	pf := gemmPrefetch{a: idle, b: idle}
	if i0 >= i1 || p0 >= p1 {
		return pf
	}
	var first, last int // element offsets of the first and past the last value
	if g.transA {
		first, last = p0*g.lda+i0, (p1-1)*g.lda+i1
	} else {
		first, last = i0*g.lda+p0, (i1-1)*g.lda+p1
	}
	if last-first <= 2*(i1-i0)*(p1-p0) {
		base := uintptr(g.a)
		pf.a, pf.aEnd, pf.as = base+uintptr(first)*4, base+uintptr(last)*4, 64
	}
	if j0 >= 0 && !g.transB {
		first, last = p0*g.ldb+j0, (p1-1)*g.ldb+j1
		if last-first <= 2*(p1-p0)*(j1-j0) {
			base := uintptr(g.b)
			pf.b, pf.bEnd, pf.bs = base+uintptr(first)*4, base+uintptr(last)*4, 64
		}
	}
	return pf
}

// advance moves the cursors past the k lines a kernel call prefetched.
func (pf *gemmPrefetch) advance(k int) {
	if pf.as != 0 {
		if pf.a += uintptr(k) * 64; pf.a >= pf.aEnd {
			pf.a, pf.as = uintptr(unsafe.Pointer(&gemmPrefetchIdle[0])), 0
		}
	}
	if pf.bs != 0 {
		if pf.b += uintptr(k) * 64; pf.b >= pf.bEnd {
			pf.b, pf.bs = uintptr(unsafe.Pointer(&gemmPrefetchIdle[0])), 0
		}
	}
}

// packPanel copies op(B)(p0:p1, q*NR:(q+1)*NR) = Bᵀ into dst, row p at
// dst + 4*NR*(p-p0), for the kernels (bks = 4*NR). Columns past n are left
// as they are; the kernels never read them.
func (g *gemmArgs) packPanel(dst unsafe.Pointer, q, p0, p1 int) {
	nr, ldb, kk := g.kern.nr, g.ldb, p1-p0
	cols := min(nr, g.n-q*nr)
	panel := unsafe.Slice((*float32)(dst), kk*nr)
	src := unsafe.Slice((*float32)(g.b), (g.n-1)*ldb+g.k)
	for jj := 0; jj < cols; jj++ {
		o := (q*nr+jj)*ldb + p0
		for p, v := range src[o : o+kk] {
			panel[p*nr+jj] = v
		}
	}
}

// gemmScale sets C = beta*C (C = 0 when beta == 0, whatever C held).
func gemmScale(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear32(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// gemmFinish applies an epilogue to C in plain Go, for the paths that do
// not go through the kernels' epilogue.
func gemmFinish(m, n int, c []float32, ldc int, e gemmEpilogue) {
	if !e.active() {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j, v := range row {
			if e.bias != nil {
				v += e.bias[j]
			}
			row[j] = max(v, e.floor())
		}
	}
}

// gemmCheck panics, as a BLAS would, when the arguments do not describe
// matrices that fit in the slices; the kernels do not check bounds.
func gemmCheck(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("engine: gemm: negative dimension %dx%dx%d", m, n, k))
	}
	need := func(what string, rows, cols, ld, length int) {
		if ld < max(1, cols) {
			panic(fmt.Sprintf("engine: gemm: %s stride %d < %d columns", what, ld, cols))
		}
		if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
			panic(fmt.Sprintf("engine: gemm: %s holds %d values, %dx%d with stride %d needs %d", what, length, rows, cols, ld, (rows-1)*ld+cols))
		}
	}
	ra, ca := m, k
	if transA {
		ra, ca = k, m
	}
	rb, cb := k, n
	if transB {
		rb, cb = n, k
	}
	need("A", ra, ca, lda, la)
	need("B", rb, cb, ldb, lb)
	need("C", m, n, ldc, lc)
}

// Free jobs, kept with their buffers.
var (
	gemmJobsMu sync.Mutex
	gemmJobs   []*gemmJob
)

func gemmGetJob() *gemmJob {
	gemmJobsMu.Lock()
	defer gemmJobsMu.Unlock()
	if n := len(gemmJobs); n > 0 {
		j := gemmJobs[n-1]
		gemmJobs = gemmJobs[:n-1]
		return j
	}
	j := new(gemmJob)
	j.task = newParallelTask(j.run)
	return j
}

func gemmPutJob(j *gemmJob) {
	gemmJobsMu.Lock()
	gemmJobs = append(gemmJobs, j)
	gemmJobsMu.Unlock()
}
