//go:build load

// The classroom load test of issue 6 runs for minutes and measures wall
// time, so it is kept out of the normal run behind the "load" build tag:
//
//	go test -tags load -run TestClassroomLoad -v -timeout 20m ./web
//
// The -load.* flags below change its numbers; the defaults are the issue's.

package web

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"
)

var (
	loadDuration    = flag.Duration("load.duration", 60*time.Second, "how long each phase trains (measured after a short warm-up)")
	loadViewers     = flag.Int("load.viewers", 200, "viewer WebSockets on the training session")
	loadPredictors  = flag.Int("load.predictors", 20, "drawing clients, each on a WebSocket of its own (in addition to the viewers)")
	loadRate        = flag.Float64("load.rate", 5, "predictions a second per drawing client")
	loadPreset      = flag.String("load.preset", "keras-mnist", "the session's preset")
	loadRounds      = flag.Int("load.rounds", 1, "rounds of a load phase followed by a baseline, after a first baseline")
	loadHeapProfile = flag.String("load.heapprofile", "", "write a heap profile to this file at the end of each load window (what the class costs in memory)")
	loadMinRatio    = flag.Float64("load.min-ratio", 0.8, "the least training throughput under load, as a fraction of the throughput without")
)

// maxLoadRounds bounds -load.rounds: each round is two phases.
const maxLoadRounds = 5

// TestClassroomLoad is issue 6's load test: a class of viewers watching one
// session train while some of them draw. It trains the same session
// settings for the same duration, from the same seed, in a fresh session
// each time: without clients, under load, and without clients again
// (-load.rounds repeats the last two), so that a drift in the machine's
// load between phases shows, and the ratio is taken against the mean of
// the baselines.
//
// Everything is the product: the MNIST training set in full, the sessions
// manager with its bbolt store, the echo server on a 127.0.0.1 listener,
// gorilla WebSocket clients that read every message as a browser would,
// sessions created and controlled through the HTTP API with the owner
// token, predictions sent over the stream as the drawing pad sends them.
// The clients run in the test's process, so their work is charged to the
// same two cores as the server's: a pessimistic setting.
//
// It fails when a client is disconnected unexpectedly, a prediction fails
// or goes unanswered, a viewer does not receive the session's final
// status, goroutines do not return to their count before the clients
// connected, or throughput under load falls below -load.min-ratio of the
// baselines'.
func TestClassroomLoad(t *testing.T) {
	cfg := classroomConfig{Preset: *loadPreset, Viewers: *loadViewers, Drawers: *loadPredictors,
		Rate: *loadRate, Duration: *loadDuration, HeapProfile: *loadHeapProfile}
	if err := cfg.check(); err != nil {
		t.Fatalf("-load flags: %v", err)
	}
	if *loadRounds < 1 || *loadRounds > maxLoadRounds {
		t.Fatalf("-load.rounds: want 1..%d", maxLoadRounds)
	}
	e := startLoadEnv(t, "") // the full set
	loadBefore := loadAverage()

	// Baseline, then (load, baseline) rounds: every load phase sits
	// between two baselines, so a drift of the machine's load shows.
	phases := []*phaseResult{e.runPhase(t, cfg, "baseline 1", false)}
	var base, load []*phaseResult
	base = append(base, phases[0])
	for i := range *loadRounds {
		l := e.runPhase(t, cfg, fmt.Sprintf("load %d", i+1), true)
		b := e.runPhase(t, cfg, fmt.Sprintf("baseline %d", i+2), false)
		phases = append(phases, l, b)
		load, base = append(load, l), append(base, b)
	}
	meanBase, meanLoad := meanImagesPerSec(base), meanImagesPerSec(load)
	ratio := meanLoad / meanBase

	r := &loadReport{}
	r.line("classroom load test: preset %s, batch %d; %d viewers + %d drawing clients at %.3g predictions/s each; %v per phase",
		*loadPreset, phases[0].batch, *loadViewers, *loadPredictors, *loadRate, *loadDuration)
	r.line("machine: %d CPUs, GOMAXPROCS %d, %s; load average before %s, after %s",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadBefore, loadAverage())
	r.line("order: baseline (no clients), then %d round(s) of load and baseline; a fresh session from the same seed in each phase", *loadRounds)
	r.line("")
	r.line("%-11s %6s %9s %6s %9s %6s %10s %10s %10s %10s", "phase", "steps", "images/s", "epochs", "max stall", "CPU", "live heap", "heap inuse", "sys", "goroutines")
	for _, p := range phases {
		r.line("%-11s %6d %9.0f %6d %9s %6s %10s %10s %10s %10d", p.name, p.steps, p.imagesPerSec(), p.epochs,
			p.maxStall.Round(time.Millisecond), p.cpu, loadMiB(p.livePeak), loadMiB(p.heapPeak), loadMiB(p.sysPeak), p.goroutinePeak)
	}
	r.line("(max stall: the longest time without a new step; an epoch's end evaluates the test set. CPU: cores the")
	r.line(" process used. Memory, goroutines: peaks of a sample a second; live heap as of the last GC, heap inuse")
	r.line(" with the garbage not yet collected.)")
	r.line("")
	r.line("throughput under load: %.0f images/s against %.0f without (the mean of the baselines): %.1f%% (target >= %.0f%%)",
		meanLoad, meanBase, 100*ratio, 100**loadMinRatio)
	failed := false
	for _, l := range load {
		l.clients.report(r, l)
		failed = failed || l.clients.failed
	}
	t.Log("\n" + r.String())

	if failed {
		t.Error("the clients saw failures (above)")
	}
	if ratio < *loadMinRatio {
		t.Errorf("training throughput under load is %.1f%% of the throughput without; the target is at least %.0f%%", 100*ratio, 100**loadMinRatio)
	}
}

func meanImagesPerSec(ps []*phaseResult) float64 {
	var sum float64
	for _, p := range ps {
		sum += p.imagesPerSec()
	}
	return sum / float64(len(ps))
}
