package engine

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
// Helpers are goroutines started on first use that wait on a channel. The
// caller and the helpers claim parts with an atomic counter, so a helper
// that wakes late (a hand-off takes µs, more on a loaded machine) just
// leaves more parts to the others. The per-call state (packed B, partial
// sums) lives in pooled jobs, so a product allocates nothing in steady
// state.

// gemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(X) is X or its transpose. C is m x n, op(A) is m x k and op(B) is k x n;
// lda, ldb and ldc are the row strides. Every matrix product in the package
// goes through here. beta == 0 overwrites C without reading it.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmWith(gemmDefault, runtime.GOMAXPROCS(0), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmMicro computes one tile of at most MR x NR; the contract is described
// at the top of gemm_amd64.s. Strides are in bytes; nc (1..NR) is the number
// of valid columns.
type gemmMicro func(k int, a *float32, rs, cs uintptr, b *float32, bks uintptr, c *float32, ldc uintptr, alpha, beta float32, nc int, pa, pb, pas, pbs uintptr)

// gemmMaxMR bounds the rows of any kernel's tile.
const gemmMaxMR = 12

// gemmKernel is one family of microkernels with its blocking.
type gemmKernel struct {
	name   string
	mr, nr int // full tile
	kc, mc int // cache blocking: depth and rows per block
	// micro[r] computes exactly r rows, for the r the family supports;
	// rows[r] is the largest supported row count <= r.
	micro [gemmMaxMR + 1]gemmMicro
	rows  [gemmMaxMR + 1]int
}

// newGemmKernel builds a kernel family; micro maps row counts to kernels and
// must include 1 and mr.
func newGemmKernel(name string, nr, kc, mc int, micro map[int]gemmMicro) *gemmKernel {
	g := &gemmKernel{name: name, nr: nr, kc: kc, mc: mc}
	for r, f := range micro {
		g.micro[r] = f
		g.mr = max(g.mr, r)
	}
	for r := 1; r <= gemmMaxMR; r++ {
		g.rows[r] = g.rows[r-1]
		if g.micro[r] != nil {
			g.rows[r] = r
		}
	}
	if g.micro[1] == nil || g.mc%g.mr != 0 {
		panic("engine: bad gemm kernel " + name)
	}
	return g
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
}

// gemmJob is a product in flight, shared by its workers.
type gemmJob struct {
	gemmArgs
	split, parts int
	step         int       // rows (M), panels (N) or depth (K) per part
	packBuf      []float32 // packed op(B), or one panel buffer per part
	jit          int       // size of a part's panel buffer, if any
	partial      []float32 // K split: (parts-1) blocks of m x n

	// state packs the job's generation (bits 32-63: each use of a pooled
	// job is a new one), the next part to claim (16-31) and the number of
	// parts (0-15). Helpers get (job, generation) and claim nothing once
	// the generation has moved on, so a job is reused as soon as its parts
	// are done, however late a helper wakes.
	state atomic.Uint64
	gen   uint32
	left  sync.WaitGroup // parts not finished
}

// gemmTask asks a helper to claim parts of generation gen of job j.
type gemmTask struct {
	j   *gemmJob
	gen uint32
}

func gemmWith(kern *gemmKernel, procs int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmCheck(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		gemmScale(m, n, beta, c, ldc)
		return
	}
	args := gemmArgs{
		kern: kern, transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta,
		a: unsafe.Pointer(&a[0]), b: unsafe.Pointer(&b[0]), c: unsafe.Pointer(&c[0]),
		lda: lda, ldb: ldb, ldc: ldc,
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
		args.block(0, m, 0, n, 0, k, args.c, ldc, beta, nil)
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
	j.left.Add(parts)
	j.gen++
	j.state.Store(uint64(j.gen)<<32 | uint64(parts))
	if helpers := min(parts, procs) - 1; helpers > 0 {
		gemmStartWorkers(helpers)
		for i := 0; i < helpers; i++ {
			gemmQueue <- gemmTask{j, j.gen}
		}
	}
	j.work(j.gen)
	j.left.Wait()
	if split == gemmSplitK {
		// C += alpha*Σ_p of each later part, in part order.
		for p := 1; p < parts; p++ {
			part := j.partial[(p-1)*m*n : p*m*n]
			for i := 0; i < m; i++ {
				gemmAddTo(c[i*ldc:i*ldc+n], part[i*n:(i+1)*n])
			}
		}
	}
	j.a, j.b, j.c, j.packed = nil, nil, nil, nil // drop the caller's slices
	gemmPutJob(j)
}

// work runs parts of generation gen of the job until none is left.
func (j *gemmJob) work(gen uint32) {
	for {
		v := j.state.Load()
		next, parts := int(v>>16&0xffff), int(v&0xffff)
		if uint32(v>>32) != gen || next >= parts {
			return
		}
		if j.state.CompareAndSwap(v, v+1<<16) {
			j.run(next)
			j.left.Done()
		}
	}
}

// run computes part p of the job.
func (j *gemmJob) run(p int) {
	m, n, k := j.m, j.n, j.k
	var jit unsafe.Pointer
	if j.jit > 0 {
		jit = gemmAlign(j.packBuf[p*j.jit : (p+1)*j.jit])
	}
	switch j.split {
	case gemmSplitM:
		i0 := min(p*j.step, m)
		i1 := min(i0+j.step, m)
		j.block(i0, i1, 0, n, 0, k, j.c, j.ldc, j.beta, jit)
	case gemmSplitN:
		nr := j.kern.nr
		q0 := p * j.step
		q1 := min(q0+j.step, (n+nr-1)/nr)
		j.block(0, m, q0*nr, min(q1*nr, n), 0, k, j.c, j.ldc, j.beta, jit)
	case gemmSplitK:
		p0 := min(p*j.step, k)
		p1 := min(p0+j.step, k)
		if p == 0 {
			j.block(0, m, 0, n, p0, p1, j.c, j.ldc, j.beta, jit)
			return
		}
		part := j.partial[(p-1)*m*n : p*m*n]
		if p0 >= p1 {
			clear32(part)
			return
		}
		j.block(0, m, 0, n, p0, p1, unsafe.Pointer(&part[0]), n, 0, jit)
	}
}

// gemmAlign returns the first cache-line aligned address in buf, which
// has 16 floats to spare.
func gemmAlign(buf []float32) unsafe.Pointer {
	p := unsafe.Pointer(&buf[0])
	return unsafe.Add(p, (64-uintptr(p)%64)%64)
}

// block computes rows [i0, i1) and columns [j0, j1) of
// alpha*Σ_{p0<=p<p1} A(i,p)B(p,j) + beta*C into c (row stride ldc).
// j0 is a multiple of NR. A transposed B is read from g.packed, or packed
// panel by panel into jit if that is not nil.
func (g *gemmArgs) block(i0, i1, j0, j1, p0, p1 int, c unsafe.Pointer, ldc int, beta float32, jit unsafe.Pointer) {
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
	for ic := i0; ic < i1; ic += mc {
		ie := min(ic+mc, i1)
		for pc := p0; pc < p1; pc += kc {
			kk := min(kc, p1-pc)
			bt := beta
			if pc != p0 {
				bt = 1
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
				nc := min(nr, j1-jc)
				var bp unsafe.Pointer
				switch {
				case jit != nil:
					g.packPanel(jit, jc/nr, pc, pc+kk)
					bp = jit
				case g.transB:
					bp = unsafe.Add(g.packed, ((jc/nr)*g.k+pc)*nr*4)
				default:
					bp = unsafe.Add(g.b, (pc*g.ldb+jc)*4)
				}
				for ir := ic; ir < ie; {
					r := kern.rows[min(ie-ir, mr)]
					ap := unsafe.Add(g.a, 4*(uintptr(ir)*rs+uintptr(pc)*cs))
					cp := unsafe.Add(c, (ir*ldc+jc)*4)
					kern.micro[r](kk, (*float32)(ap), rs*4, cs*4, (*float32)(bp), bks,
						(*float32)(cp), uintptr(ldc)*4, g.alpha, bt, nc,
						pf.a, pf.b, pf.as, pf.bs)
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

// gemmAddTo adds s to d element by element.
func gemmAddTo(d, s []float32) {
	s = s[:len(d)]
	for i := range d {
		d[i] += s[i]
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

// The worker pool: goroutines started on demand that help with jobs.
var (
	gemmQueue     = make(chan gemmTask, 64)
	gemmWorkers   atomic.Int32
	gemmWorkersMu sync.Mutex
	gemmJobsMu    sync.Mutex
	gemmJobs      []*gemmJob // free jobs, kept with their buffers
)

func gemmStartWorkers(n int) {
	if int(gemmWorkers.Load()) >= n {
		return
	}
	gemmWorkersMu.Lock()
	for int(gemmWorkers.Load()) < n {
		gemmWorkers.Add(1)
		go func() {
			for t := range gemmQueue {
				t.j.work(t.gen)
			}
		}()
	}
	gemmWorkersMu.Unlock()
}

func gemmGetJob() *gemmJob {
	gemmJobsMu.Lock()
	defer gemmJobsMu.Unlock()
	if n := len(gemmJobs); n > 0 {
		j := gemmJobs[n-1]
		gemmJobs = gemmJobs[:n-1]
		return j
	}
	return new(gemmJob)
}

func gemmPutJob(j *gemmJob) {
	gemmJobsMu.Lock()
	gemmJobs = append(gemmJobs, j)
	gemmJobsMu.Unlock()
}
