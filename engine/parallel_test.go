package engine

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelTask checks that every part runs exactly once per run, that
// slots stay below procs and are never shared by two goroutines at once,
// that tasks can be reused at once and run from several goroutines (each
// its own task) and from inside another task's part.
func TestParallelTask(t *testing.T) {
	const procs = 4
	var (
		counts [1000]atomic.Int32
		inUse  [procs]atomic.Int32
	)
	var inner *parallelTask
	task := newParallelTask(func(p, slot int) {
		if slot < 0 || slot >= procs {
			t.Errorf("slot %d", slot)
			return
		}
		if inUse[slot].Add(1) != 1 {
			t.Errorf("slot %d used twice at once", slot)
		}
		counts[p].Add(1)
		inUse[slot].Add(-1)
	})
	for run := 1; run <= 50; run++ {
		parts := 1 + run*run%1000
		task.run(parts, procs)
		for p := 0; p < parts; p++ {
			if c := counts[p].Swap(0); c != 1 {
				t.Fatalf("run %d: part %d ran %d times", run, p, c)
			}
		}
	}
	// More parts than one round can count.
	var many atomic.Int64
	big := newParallelTask(func(p, slot int) { many.Add(int64(p)) })
	const n = parallelMaxParts*2 + 10
	big.run(n, procs)
	if want := int64(n) * (n - 1) / 2; many.Load() != want {
		t.Errorf("%d parts: sum %d, want %d", n, many.Load(), want)
	}
	// Nested: each part of an outer task runs an inner task.
	var total atomic.Int32
	inner = newParallelTask(func(p, slot int) { total.Add(1) })
	var mu sync.Mutex
	outer := newParallelTask(func(p, slot int) {
		mu.Lock() // one inner task: run it from one part at a time
		inner.run(10, procs)
		mu.Unlock()
	})
	outer.run(8, procs)
	if total.Load() != 80 {
		t.Errorf("nested: %d inner parts ran, want 80", total.Load())
	}
	// Concurrent callers with their own tasks.
	var wg sync.WaitGroup
	var sum atomic.Int64
	for g := 0; g < 6; g++ {
		wg.Go(func() {
			tk := newParallelTask(func(p, slot int) { sum.Add(int64(p)) })
			for i := 0; i < 100; i++ {
				tk.run(20, procs)
			}
		})
	}
	wg.Wait()
	if want := int64(6 * 100 * 190); sum.Load() != want {
		t.Errorf("concurrent: sum %d, want %d", sum.Load(), want)
	}
}
