package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cnnviz/engine"
	"cnnviz/sessions"
)

// event is a stored stream message as GET /history returns it.
type event struct {
	Type string          `json:"type"`
	Seq  uint64          `json:"seq"`
	Data json.RawMessage `json:"data"`
}

// history returns a session's stored events, each also as its raw JSON.
func (p *vizProcess) history(t *testing.T, id string) ([]event, []json.RawMessage) {
	t.Helper()
	var raw []json.RawMessage
	p.call(t, "GET", "/api/sessions/"+id+"/history", "", "", &raw)
	events := make([]event, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &events[i]); err != nil {
			t.Fatal(err)
		}
	}
	return events, raw
}

// bigSession is a model whose checkpoint (a 784x1024 dense layer with
// Adam's two slots: 9.8 MB, written and fsynced) takes long enough to
// write that a test watching the folder sees the temporary file. Epochs are
// kept short by the server's --train-limit: 8 batches of 100 images.
const bigSession = `{"name": "big", "optimizer": "adam", "batchSize": 100, "epochs": 4, "layers": [
	{"type": "flatten"}, {"type": "dense", "units": 1024, "activation": "relu"}, {"type": "dense", "units": 10}]}`

// TestKillDuringCheckpointWrite kills a real server with SIGKILL while it
// is writing a checkpoint (its temporary file exists, the rename has not
// happened), starts a new one on the same data folder and checks that
// every session is back with its whole history, that the previous
// checkpoint loads, that training resumes from it and finishes, and that
// the half-written file is removed.
func TestKillDuringCheckpointWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	flags := []string{"--train-limit", "800"}
	p := startViz(t, dir, flags...)

	// A second session, paused: it must come back exactly as it was.
	var paused struct{ ID, OwnerToken string }
	p.call(t, "POST", "/api/sessions", "", `{"preset": "tiny", "epochs": 1}`, &paused)
	p.call(t, "POST", "/api/sessions/"+paused.ID+"/start", paused.OwnerToken, "", nil)
	poll(t, "the tiny session to train", func() bool { return p.info(t, paused.ID).Step >= 5 })
	p.call(t, "POST", "/api/sessions/"+paused.ID+"/pause", paused.OwnerToken, "", nil)
	pausedInfo := p.info(t, paused.ID)
	_, pausedHistory := p.history(t, paused.ID)

	var big struct{ ID, OwnerToken string }
	p.call(t, "POST", "/api/sessions", "", bigSession, &big)
	p.call(t, "POST", "/api/sessions/"+big.ID+"/start", big.OwnerToken, "", nil)
	ckptDir := filepath.Join(dir, "checkpoints")
	ckpt := filepath.Join(ckptDir, big.ID+".ckpt")
	tmpPrefix := "." + big.ID + ".ckpt.tmp-" // see checkpoint.Save

	// Once a first checkpoint exists, watch the folder for the next one's
	// temporary file and kill the server the moment it appears. A kill
	// that lands after the rename (the temporary file is gone once the
	// process is dead) missed the write: restart and try the next epoch.
	var seen []json.RawMessage // the history before the kill, which must survive
	var tmp string
	attempts := 0
	for tmp == "" {
		attempts++
		if attempts > 3 {
			t.Fatal("three kills in a row landed after the checkpoint was written")
		}
		poll(t, "a first checkpoint", func() bool { _, err := os.Stat(ckpt); return err == nil })
		_, seen = p.history(t, big.ID)
		name := killOnTempFile(t, p, ckptDir, tmpPrefix, big.ID)
		if fi, err := os.Stat(filepath.Join(ckptDir, name)); err == nil {
			tmp = name
			t.Logf("attempt %d: killed with %s at %d bytes", attempts, name, fi.Size())
		} else {
			t.Logf("attempt %d: the write was over when the kill landed", attempts)
			p = startViz(t, dir, flags...)
		}
	}

	// The checkpoint the server was replacing is intact: the one at the
	// end of the epoch before.
	_, _, kept, err := engine.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatalf("the previous checkpoint does not load: %v", err)
	}
	if kept.Batch != 0 || kept.Epoch < 1 {
		t.Fatalf("previous checkpoint at epoch %d batch %d, want an epoch end", kept.Epoch, kept.Batch)
	}

	q := startViz(t, dir, flags...)
	var list []sessions.Info
	q.call(t, "GET", "/api/sessions", "", "", &list)
	ids := []string{}
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, sortedPair(big.ID, paused.ID)) {
		t.Fatalf("after the restart the sessions are %v", ids)
	}

	// The paused session is exactly as it was.
	if _, h := q.history(t, paused.ID); !slices.EqualFunc(h, pausedHistory, sameJSON) {
		t.Errorf("the paused session's history changed: %d events, %d before", len(h), len(pausedHistory))
	}
	if info := q.info(t, paused.ID); info.Status != sessions.StatusPaused || info.Step != pausedInfo.Step {
		t.Errorf("paused session came back %s at step %d, was paused at %d", info.Status, info.Step, pausedInfo.Step)
	}

	// The killed session has its whole history: everything stored before
	// the kill, the result of the epoch whose checkpoint was being written
	// (it is stored first), then one rewind per restart, the last to the
	// checkpoint that was kept.
	events, raw := q.history(t, big.ID)
	if len(raw) < len(seen) || !slices.EqualFunc(raw[:len(seen)], seen, sameJSON) {
		t.Fatalf("history before the kill (%d events) is not kept (%d events now)", len(seen), len(raw))
	}
	bpe := q.info(t, big.ID).BatchesPerEpoch
	rewinds, lastRewind := 0, -1
	for i, e := range events {
		if e.Type == "rewind" {
			rewinds++
			lastRewind = i
		}
	}
	if rewinds != attempts {
		t.Errorf("%d rewinds after %d restarts", rewinds, attempts)
	}
	epochsBefore := 0
	for _, e := range events[:max(lastRewind, 0)] {
		if e.Type == "epoch" {
			epochsBefore++
		}
	}
	var rw sessions.RewindEvent
	if lastRewind >= 0 {
		json.Unmarshal(events[lastRewind].Data, &rw)
	}
	if epochsBefore != kept.Epoch+1 || rw.Step != int64(kept.Epoch*bpe) {
		t.Errorf("history has %d epochs then a rewind to step %d; the checkpoint kept is epoch %d (step %d) and epoch %d was being saved",
			epochsBefore, rw.Step, kept.Epoch, kept.Epoch*bpe, kept.Epoch+1)
	}

	// The half-written file is gone: the restart removed it.
	for _, name := range dirNames(t, ckptDir) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("%s left in the checkpoint folder after the restart", name)
		}
	}

	// Training resumes from the kept checkpoint and finishes, and the
	// history has every batch once.
	poll(t, "training to finish after the restart", func() bool { return q.info(t, big.ID).Status == sessions.StatusFinished })
	final := q.info(t, big.ID)
	if len(final.Epochs) != 4 || final.Step != int64(4*bpe) {
		t.Errorf("finished with %d epochs at step %d", len(final.Epochs), final.Step)
	}
	if _, _, st, err := engine.LoadCheckpoint(ckpt); err != nil || st.Epoch != 4 {
		t.Errorf("final checkpoint: %v, epoch %d", err, st.Epoch)
	}
	events, _ = q.history(t, big.ID)
	if steps := pointSteps(t, events); len(steps) != 4*bpe || steps[len(steps)-1] != int64(4*bpe) {
		t.Errorf("history has %d points after the rewinds, want %d", len(steps), 4*bpe)
	}
}

// killOnTempFile watches dir in a tight loop and SIGKILLs p the moment a
// file whose name starts with prefix holds some data (a partial
// checkpoint, not just a created file); it returns that name once the
// process is dead. It gives up if session id finishes first.
func killOnTempFile(t *testing.T, p *vizProcess, dir, prefix, id string) string {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for checked := time.Now(); ; {
		if time.Since(checked) > 100*time.Millisecond { // now and then, not to slow the loop
			if p.info(t, id).Status == sessions.StatusFinished {
				t.Fatal("training finished before a checkpoint write was caught")
			}
			checked = time.Now()
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				if err := p.cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				p.cmd.Wait()
				return e.Name()
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint write seen")
		}
	}
}

// pointSteps applies a history's rewinds to its metric points, as a viewer
// does, and returns the steps left; it fails unless they count 1, 2, 3...
func pointSteps(t *testing.T, events []event) []int64 {
	t.Helper()
	var steps []int64
	for _, e := range events {
		switch e.Type {
		case "metrics":
			var m sessions.MetricsEvent
			json.Unmarshal(e.Data, &m)
			for _, p := range m.Points {
				steps = append(steps, p.Step)
			}
		case "rewind":
			var rw sessions.RewindEvent
			json.Unmarshal(e.Data, &rw)
			for len(steps) > 0 && steps[len(steps)-1] > rw.Step {
				steps = steps[:len(steps)-1]
			}
		}
	}
	for i, s := range steps {
		if s != int64(i+1) {
			t.Fatalf("point %d of the history is for step %d", i, s)
		}
	}
	return steps
}

// sameJSON compares two stored events byte for byte.
func sameJSON(a, b json.RawMessage) bool { return bytes.Equal(a, b) }

func sortedPair(a, b string) []string {
	s := []string{a, b}
	slices.Sort(s)
	return s
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
