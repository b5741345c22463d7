package sessions

import (
	"sync"
	"testing"
	"time"

	"cnnviz/engine"
)

// TestPredictorsBoundedByCores checks that predictor models in use at once
// are bounded by predictSlots, whatever the number of callers: each holds
// a model of its own, so before the bound a class of drawing clients grew
// the session's pool with the class (web/load_test.go found nine keras-mnist
// models, 90 MB, for twenty clients).
func TestPredictorsBoundedByCores(t *testing.T) {
	m, hub := openManager(t, t.TempDir(), 1)
	defer closeManager(t, m, hub)
	s, _, err := m.Create(Settings{Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}

	// Take every slot, as that many predictions in progress would.
	var releases []func()
	models := map[*engine.Model]bool{}
	for range cap(predictSlots) {
		model, release, err := s.predictor()
		if err != nil {
			t.Fatal(err)
		}
		models[model] = true
		releases = append(releases, release)
	}
	if len(models) != cap(predictSlots) {
		t.Fatalf("%d callers at once got %d distinct models", cap(predictSlots), len(models))
	}

	// One more caller waits until a model is released.
	got := make(chan *engine.Model, 1)
	go func() {
		model, release, err := s.predictor()
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- model
		release()
	}()
	select {
	case <-got:
		t.Fatalf("a caller got a model while all %d slots were taken", cap(predictSlots))
	case <-time.After(50 * time.Millisecond):
		// Still waiting, as it should; a broken bound would almost always
		// have answered by now (this can pass wrongly, never fail wrongly).
	}
	releases[0]()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting caller did not get the released model")
	}
	for _, release := range releases[1:] {
		release()
	}

	// Many concurrent predictions all succeed: each gives its slot back.
	var wg sync.WaitGroup
	d := engine.Drawing{W: 28, H: 28, Pixels: m.opts.Test.Image(0)}
	for range 8 * cap(predictSlots) {
		wg.Go(func() {
			if _, err := s.Predict(d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
