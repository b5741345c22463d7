package engine

import (
	"runtime"
	"sync"
)

// parallelFor calls fn over [0, n) split into one contiguous chunk per CPU.
// Chunks never overlap, so kernels that write only to their own rows need
// no locking, and the split is fixed for a given n and GOMAXPROCS, so results
// are reproducible bit for bit.
func parallelFor(n int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		wg.Go(func() { fn(lo, min(lo+chunk, n)) })
	}
	fn(0, min(chunk, n)) // the calling goroutine does the first chunk
	wg.Wait()
}
