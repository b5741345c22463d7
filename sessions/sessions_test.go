package sessions

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cnnviz/engine"
	"cnnviz/engine/mnist"
	"cnnviz/stream"
)

// The tests train real models on the real MNIST subset in testdata/mnist
// (4,000 training and 1,000 test images), small enough for seconds.

func loadData(t testing.TB) (train, test *mnist.Set) {
	t.Helper()
	train, test, err := mnist.Load(filepath.Join("..", "testdata", "mnist"))
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openManager(t *testing.T, dir string, maxRunning int) (*Manager, *stream.Hub) {
	t.Helper()
	train, test := loadData(t)
	hub := stream.NewHub(stream.Options{})
	m, err := Open(Options{Dir: dir, Hub: hub, Train: train, Test: test, MaxRunning: maxRunning, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return m, hub
}

func closeManager(t *testing.T, m *Manager, hub *stream.Hub) {
	t.Helper()
	hub.Close()
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

// waitFor polls cond until it holds or a generous deadline passes; the
// deadline only bounds a broken test, it times nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func u64(v uint64) *uint64 { return &v }
func boolp(v bool) *bool   { return &v }

func TestSettingsErrorsNameTheField(t *testing.T) {
	cases := []struct {
		s     Settings
		field string
	}{
		{Settings{Preset: "vgg"}, "preset"},
		{Settings{LearningRate: -1}, "learningRate"},
		{Settings{Optimizer: "rmsprop"}, "optimizer"},
		{Settings{Momentum: 2, Optimizer: "sgd"}, "momentum"},
		{Settings{BatchSize: 5000}, "batchSize"},
		{Settings{Epochs: -1}, "epochs"},
		{Settings{Epochs: 1000}, "epochs"},
		{Settings{Dataset: "cifar"}, "dataset"},
		{Settings{Layers: []engine.LayerSpec{{Type: "flatten"}, {Type: "dense", Units: 3}}}, "layers[1]"},
		{Settings{Layers: []engine.LayerSpec{}}, "layers"},
	}
	for _, tc := range cases {
		_, err := tc.s.Resolve()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: error %v, want a FieldError for %q", tc.s, err, tc.field)
		}
	}
	c, err := Settings{Preset: "keras-mnist", Dropout: boolp(false), Seed: u64(9)}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Spec.Layers {
		if l.Type == "dropout" {
			t.Error("dropout: false kept a dropout layer")
		}
	}
	if c.Seed != 9 || c.Optimizer.Name != "adadelta" || c.BatchSize != 128 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLifecycle(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 2)
	defer closeManager(t, m, hub)
	s, token, err := m.Create(Settings{Preset: "tiny", Epochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsOwner(token) || s.IsOwner("nope") || s.IsOwner("") {
		t.Fatal("owner token check is wrong")
	}
	if err := s.Control(ActionPause); !errors.Is(err, ErrConflict) {
		t.Errorf("pause of a created session: %v, want ErrConflict", err)
	}
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "training steps", func() bool { return s.Record().Step >= 5 })

	// Pause takes effect within one batch: once Control returns, no more
	// steps are trained.
	if err := s.Control(ActionPause); err != nil {
		t.Fatal(err)
	}
	paused := s.Record()
	if paused.Status != StatusPaused {
		t.Fatalf("status %s after pause", paused.Status)
	}
	time.Sleep(100 * time.Millisecond)
	if got := s.Record().Step; got != paused.Step {
		t.Fatalf("trained %d batches while paused", got-paused.Step)
	}
	if !s.hasCheckpoint() {
		t.Error("no checkpoint after pause")
	}
	// Step trains exactly one batch and stays paused.
	if err := s.Control(ActionStep); err != nil {
		t.Fatal(err)
	}
	if r := s.Record(); r.Step != paused.Step+1 || r.Status != StatusPaused {
		t.Fatalf("after step: step %d status %s, want %d paused", r.Step, r.Status, paused.Step+1)
	}
	if err := s.Control(ActionResume); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "more steps after resume", func() bool { return s.Record().Step > paused.Step+3 })
	if err := s.Control(ActionStop); err != nil {
		t.Fatal(err)
	}
	if r := s.Record(); r.Status != StatusStopped {
		t.Fatalf("status %s after stop", r.Status)
	}
	if err := s.Control(ActionStart); !errors.Is(err, ErrConflict) {
		t.Errorf("start after stop: %v, want ErrConflict", err)
	}
}

func TestTrainsToTheEnd(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 2)
	defer closeManager(t, m, hub)
	s, _, err := m.Create(Settings{Preset: "tiny", Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the end of training", func() bool { return s.Record().Status == StatusFinished })
	r := s.Record()
	if len(r.Epochs) != 2 || r.Step != int64(2*r.BatchesPerEpoch) {
		t.Fatalf("epochs %d, step %d of %d per epoch", len(r.Epochs), r.Step, r.BatchesPerEpoch)
	}
	if acc := r.Epochs[1].TestAcc; acc < 0.85 {
		t.Errorf("test accuracy %.3f after 2 epochs of tiny on the subset", acc)
	}
	total := 0
	for _, row := range r.Confusion {
		for _, n := range row {
			total += n
		}
	}
	if total != 1000 {
		t.Errorf("confusion matrix counts %d test images, want 1000", total)
	}
	points, epochs, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	// Every batch is in the history, in order: nothing was lost to
	// coalescing.
	if len(points) != int(r.Step) || len(epochs) != 2 {
		t.Fatalf("history has %d points and %d epochs, want %d and 2", len(points), len(epochs), r.Step)
	}
	for i, p := range points {
		if p.Step != int64(i+1) {
			t.Fatalf("point %d has step %d", i, p.Step)
		}
	}
	steps, err := m.Store().SnapshotSteps(s.ID())
	if err != nil || len(steps) == 0 {
		t.Fatalf("snapshots: %v %v", steps, err)
	}
	if _, frame, err := m.Store().Snapshot(s.ID(), steps[len(steps)/2]+1); err != nil || len(frame) == 0 {
		t.Fatalf("snapshot lookup: %v", err)
	}
}

// TestPredictWhileTraining runs predictions on other goroutines while the
// session trains; under -race this proves predictions never touch the
// training model's weights.
func TestPredictWhileTraining(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 2)
	defer closeManager(t, m, hub)
	s, _, err := m.Create(Settings{Preset: "tiny", Epochs: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, test := m.Data()
	drawing := engine.Drawing{W: 28, H: 28, Pixels: test.Image(0)} // a 7
	if _, err := s.Predict(drawing); err != nil {                  // before any training
		t.Fatal(err)
	}
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Go(func() {
			for i := 0; i < 30; i++ {
				p, err := s.Predict(drawing)
				if err != nil {
					t.Error(err)
					return
				}
				var sum float32
				for _, v := range p.Probabilities {
					sum += v
				}
				if sum < 0.99 || sum > 1.01 {
					t.Errorf("probabilities sum to %v", sum)
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "the end of training", func() bool { return s.Record().Status == StatusFinished })
	p, err := s.Predict(drawing)
	if err != nil {
		t.Fatal(err)
	}
	if p.Digit != int(test.Labels[0]) {
		t.Errorf("the trained model says %d for a %d", p.Digit, test.Labels[0])
	}
	if _, err := s.Predict(engine.Drawing{W: 3, H: 3, Pixels: make([]uint8, 9)}); err == nil {
		t.Error("a 3x3 drawing was accepted")
	}
}

func TestQueueing(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 1)
	defer closeManager(t, m, hub)
	a, _, _ := m.Create(Settings{Preset: "tiny", Epochs: 5})
	b, _, _ := m.Create(Settings{Preset: "tiny", Epochs: 5})
	if err := a.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a running", func() bool { return a.Record().Status == StatusRunning })
	if err := b.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b queued", func() bool { return b.Record().Status == StatusQueued })
	if b.Record().Step != 0 {
		t.Error("a queued session trained")
	}
	if err := a.Control(ActionPause); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b running once a pauses", func() bool { return b.Record().Step > 0 })
	if err := b.Control(ActionStop); err != nil {
		t.Fatal(err)
	}
	if err := a.Control(ActionStop); err != nil {
		t.Fatal(err)
	}
}

// TestRestartRecovery stops a manager in the middle of training and opens
// a new one on the same folder: the session is listed with its whole
// history and goes on from its checkpoint to the end.
func TestRestartRecovery(t *testing.T) {
	dir := t.TempDir()
	m, hub := openManager(t, dir, 2)
	s, token, err := m.Create(Settings{Preset: "tiny", Epochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first epoch", func() bool { return s.Record().Epoch >= 1 && s.Record().Batch > 5 })
	pointsBefore, _, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	closeManager(t, m, hub)
	before := s.Record()

	m2, hub2 := openManager(t, dir, 2)
	defer closeManager(t, m2, hub2)
	s2, err := m2.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.IsOwner(token) {
		t.Error("the owner token no longer works after a restart")
	}
	points, _, err := s2.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(points) < len(pointsBefore) {
		t.Errorf("history shrank from %d to %d points", len(pointsBefore), len(points))
	}
	// A graceful stop checkpoints where training stood: nothing is lost and
	// no rewind is needed.
	if r := s2.Record(); r.Step < before.Step {
		t.Errorf("resumed at step %d, stopped at %d", r.Step, before.Step)
	}
	if hub2.Topic(id).LastSeq() < before.Seq-2 { // the last state/frames may not be logged
		t.Errorf("stream history lost: last seq %d, was %d", hub2.Topic(id).LastSeq(), before.Seq)
	}
	waitFor(t, "the end of training after the restart", func() bool { return s2.Record().Status == StatusFinished })
	if r := s2.Record(); len(r.Epochs) != 3 {
		t.Errorf("%d epochs recorded, want 3", len(r.Epochs))
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	m, hub := openManager(t, dir, 2)
	defer closeManager(t, m, hub)
	s, _, _ := m.Create(Settings{Preset: "tiny"})
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "training", func() bool { return s.Record().Step > 3 })
	if err := m.Delete(s.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(s.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	if _, err := os.Stat(m.Store().CheckpointPath(s.ID())); !os.IsNotExist(err) {
		t.Errorf("checkpoint left behind: %v", err)
	}
	events, _ := m.Store().Events(s.ID(), 0)
	if len(events) != 0 {
		t.Errorf("%d events left behind", len(events))
	}
}

// TestSnapshotSize reports what a stored snapshot of each preset costs on
// disk (deflated), the figure quoted in the README.
func TestSnapshotSize(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 2)
	defer closeManager(t, m, hub)
	for _, preset := range []string{"tiny", "keras-mnist"} {
		s, _, err := m.Create(Settings{Preset: preset})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Control(ActionStep); err != nil {
			t.Fatal(err)
		}
		model, release, err := s.predictor()
		if err != nil {
			t.Fatal(err)
		}
		filters, acts := s.frames(model, 1)
		release()
		acts.Groups = append([]stream.ImageGroup{filters.Groups[0]}, acts.Groups...)
		raw, err := acts.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		packed, err := compress(raw)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decompress(packed)
		if err != nil || len(back) != len(raw) {
			t.Fatalf("round trip: %v", err)
		}
		rec := s.Record()
		n := rec.BatchesPerEpoch * rec.Config.Epochs / rec.SnapshotEvery
		t.Logf("%s: snapshot %d bytes, %d deflated; every %d batches, %d snapshots per run, %.0f MB",
			preset, len(raw), len(packed), rec.SnapshotEvery, n, float64(n*len(packed))/1e6)
	}
}

func TestModelMemoryLimit(t *testing.T) {
	train, test := loadData(t)
	hub := stream.NewHub(stream.Options{})
	m, err := Open(Options{Dir: t.TempDir(), Hub: hub, Train: train, Test: test, Log: quietLog(), MaxModelBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer closeManager(t, m, hub)
	if _, _, err := m.Create(Settings{Preset: "tiny"}); err != nil {
		t.Fatalf("tiny refused: %v", err)
	}
	_, _, err = m.Create(Settings{Preset: "keras-mnist"}) // ~110 MB at batch 128
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "layers" || !strings.Contains(err.Error(), "MB") {
		t.Fatalf("keras-mnist under a 64 MB limit: %v", err)
	}
	if len(m.List()) != 1 {
		t.Errorf("the refused session was stored")
	}
}

// A learning rate far too high must stop the session as "diverged", naming
// the batch, rather than stream NaN curves; nothing after the NaN batch is
// stored.
func TestDivergenceStopsTheSession(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 1)
	defer closeManager(t, m, hub)
	// Without ReLUs nothing dies off: each layer's step scales the next
	// one's gradient, so the weights grow geometrically until they overflow.
	linear := []engine.LayerSpec{
		{Type: "conv2d", Filters: 8, Kernel: engine.Size{H: 3, W: 3}},
		{Type: "flatten"},
		{Type: "dense", Units: 64},
		{Type: "dense", Units: 10},
	}
	s, _, err := m.Create(Settings{Layers: linear, Optimizer: "sgd", LearningRate: 100, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "training to stop", func() bool { return s.Record().Status.final() })
	r := s.Record()
	if r.Status != StatusDiverged {
		t.Fatalf("status %q (%s), want diverged", r.Status, r.StatusReason)
	}
	var batch int
	if _, err := fmt.Sscanf(r.StatusReason, "loss became NaN at batch %d", &batch); err != nil {
		if _, err := fmt.Sscanf(r.StatusReason, "loss became +Inf at batch %d", &batch); err != nil {
			t.Fatalf("reason %q does not name the batch", r.StatusReason)
		}
	}
	points, _, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		if math.IsNaN(float64(p.Loss)) || math.IsInf(float64(p.Loss), 0) {
			t.Fatalf("a non-finite loss was streamed: %+v", p)
		}
	}
	if err := s.Control(ActionResume); err == nil {
		t.Error("a diverged session resumed")
	}
}

// A checkpoint that became unreadable while the server was down leaves the
// session failed with a reason, its history and the file untouched, and
// the server up.
func TestUnreadableCheckpointAtRestart(t *testing.T) {
	dir := t.TempDir()
	m, hub := openManager(t, dir, 1)
	s, _, err := m.Create(Settings{Preset: "tiny", Epochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first epoch", func() bool { return len(s.Record().Epochs) >= 1 })
	closeManager(t, m, hub) // checkpoints; the record still says running
	path := m.Store().CheckpointPath(id)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	m2, hub2 := openManager(t, dir, 1)
	defer closeManager(t, m2, hub2)
	s2, err := m2.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	r := s2.Record()
	if r.Status != StatusFailed || !strings.Contains(r.StatusReason, "could not resume") || !strings.Contains(r.StatusReason, "checkpoint") {
		t.Fatalf("status %q, reason %q: want failed, naming the checkpoint", r.Status, r.StatusReason)
	}
	if strings.Contains(r.StatusReason, dir) {
		t.Errorf("the reason viewers see names the server's directories: %q", r.StatusReason)
	}
	if len(r.Epochs) < 1 {
		t.Error("the epoch history was lost")
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(data) {
		t.Error("the unreadable checkpoint was changed; it should stay for inspection")
	}
}
