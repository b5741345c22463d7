package sessions

import (
	"testing"
)

// TestRestartAfterFinalCheckpoint restarts a session that a kill -9 caught
// between its last checkpoint (every epoch trained) and the status that
// says it is finished: the store says it is still running. It must come
// back finished, not try to train a batch past the last epoch (which
// panicked the server, at every start).
func TestRestartAfterFinalCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m, hub := openManager(t, dir, 1)
	s, _, err := m.Create(Settings{Preset: "tiny", Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if err := s.Control(ActionStart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "training to finish", func() bool { return s.Record().Status == StatusFinished })
	done := s.Record()
	closeManager(t, m, hub)

	// What the store holds if the process died just before the status
	// change was committed: the final checkpoint, a running record.
	store, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := done
	rec.Status, rec.StatusReason = StatusRunning, ""
	if err := store.Apply([]write{{record: &rec}}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	m, hub = openManager(t, dir, 1)
	defer closeManager(t, m, hub)
	s, err = m.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to say it is finished", func() bool { return s.Record().Status == StatusFinished })
	if r := s.Record(); r.Step != done.Step || len(r.Epochs) != 1 || r.StatusReason != "trained 1 epoch" {
		t.Errorf("after the restart: step %d (was %d), %d epochs, reason %q", r.Step, done.Step, len(r.Epochs), r.StatusReason)
	}
}
