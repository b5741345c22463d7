package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The package's worker pool. Kernels cut their work into parts that write
// disjoint memory and that depend only on the shapes (never on the number
// of goroutines that happen to run them), so every result is reproducible
// bit for bit; the calling goroutine and up to GOMAXPROCS-1 helpers then
// claim parts with an atomic counter. A helper that wakes late (a hand-off
// takes µs, far more when another process holds the other core) simply
// leaves more parts to the others.
//
// Helpers are goroutines started on first use that wait on a channel; they
// live as long as the process, like the runtime's own workers, and hold no
// state between tasks. A task is a function value built once (a layer
// builds its tasks when it is constructed), so running one allocates
// nothing.

// parallelTask is work cut into parts 0..parts-1. fn(part, slot) computes
// one part; slot, in [0, procs), is unique among the goroutines running the
// task at the same time, so that fn can use per-slot scratch buffers. A
// task must not be run by two goroutines at once.
type parallelTask struct {
	fn func(part, slot int)

	// state packs the run's generation (bits 40-63: each run is a new
	// one), the slots handed out (32-39), the next part to claim (16-31)
	// and the number of parts (0-15). Helpers get (task, generation) and
	// claim nothing once the generation has moved on, so a task is reused
	// as soon as its parts are done, however late a helper wakes.
	state atomic.Uint64
	gen   uint32
	base  int            // the first part of the round in progress
	left  sync.WaitGroup // parts not finished
}

func newParallelTask(fn func(part, slot int)) *parallelTask {
	return &parallelTask{fn: fn}
}

// Bounds from the packing of state: parts and goroutines per run.
const (
	parallelMaxParts = 1<<16 - 1
	parallelMaxSlots = 1<<8 - 1
)

func packState(gen uint32, slots, next, parts int) uint64 {
	return uint64(gen&0xffffff)<<40 | uint64(slots)<<32 | uint64(next)<<16 | uint64(parts)
}

func unpackState(v uint64) (gen uint32, slots, next, parts int) {
	return uint32(v >> 40), int(v >> 32 & 0xff), int(v >> 16 & 0xffff), int(v & 0xffff)
}

// run computes every part on the calling goroutine and up to procs-1
// helpers, and returns when all parts are done. procs <= 0 means
// GOMAXPROCS.
func (t *parallelTask) run(parts, procs int) {
	for parts > parallelMaxParts { // rounds of what state can count
		t.runRound(parallelMaxParts, procs)
		t.base += parallelMaxParts
		parts -= parallelMaxParts
	}
	t.runRound(parts, procs)
	t.base = 0
}

// runRound runs parts base..base+parts-1.
func (t *parallelTask) runRound(parts, procs int) {
	if parts <= 0 {
		return
	}
	if procs <= 0 {
		procs = runtime.GOMAXPROCS(0)
	}
	helpers := min(parts, procs, parallelMaxSlots) - 1
	if helpers <= 0 {
		for p := 0; p < parts; p++ {
			t.fn(t.base+p, 0)
		}
		return
	}
	t.left.Add(parts)
	t.gen = (t.gen + 1) & 0xffffff
	t.state.Store(packState(t.gen, 1, 0, parts)) // the caller is slot 0
	poolStart(helpers)
	for i := 0; i < helpers; i++ {
		select {
		case poolQueue <- poolItem{t, t.gen}:
		default: // the queue is full: the goroutines already running will do it
		}
	}
	t.work(t.gen, 0)
	t.left.Wait()
}

// work runs parts of generation gen until none is left.
func (t *parallelTask) work(gen uint32, slot int) {
	for {
		v := t.state.Load()
		g, _, next, parts := unpackState(v)
		if g != gen || next >= parts {
			return
		}
		if t.state.CompareAndSwap(v, v+1<<16) {
			t.fn(t.base+next, slot)
			t.left.Done()
		}
	}
}

// join is a helper's entry: it takes the next slot and works, unless the
// run is already over.
func (t *parallelTask) join(gen uint32) {
	for {
		v := t.state.Load()
		g, slots, next, parts := unpackState(v)
		if g != gen || next >= parts || slots >= parallelMaxSlots {
			return
		}
		if t.state.CompareAndSwap(v, v+1<<32) {
			t.work(gen, slots)
			return
		}
	}
}

// poolItem asks a helper to join generation gen of task t.
type poolItem struct {
	t   *parallelTask
	gen uint32
}

var (
	poolQueue   = make(chan poolItem, 256)
	poolWorkers atomic.Int32
	poolMu      sync.Mutex
)

// poolStart makes sure at least n helpers are running.
func poolStart(n int) {
	if int(poolWorkers.Load()) >= n {
		return
	}
	poolMu.Lock()
	for int(poolWorkers.Load()) < n {
		poolWorkers.Add(1)
		go func() {
			for it := range poolQueue {
				it.t.join(it.gen)
			}
		}()
	}
	poolMu.Unlock()
}

// procs is the number of goroutines kernels use.
func procs() int { return runtime.GOMAXPROCS(0) }
