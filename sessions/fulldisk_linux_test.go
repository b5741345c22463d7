//go:build linux

package sessions

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cnnviz/engine"
	"cnnviz/stream"
)

// bigDense is a model whose checkpoint (weights and Adam's two slots,
// 2.4 MB) dwarfs everything else the store writes in a short run (the
// store's file stays at 64 KB), so that a file size limit between the two
// fails the checkpoint alone.
var bigDense = []engine.LayerSpec{
	{Type: "flatten"},
	{Type: "dense", Units: 256, Activation: "relu"},
	{Type: "dense", Units: 10},
}

// fileSizeLimit is RLIMIT_FSIZE while a checkpoint is to fail: any write
// past it fails with EFBIG ("file too large"), as a full disk fails one
// with ENOSPC. The kernel also sends SIGXFSZ, which would kill a C program;
// Go's signal handler drops it unless os/signal asks for it.
const fileSizeLimit = 1 << 20

// limitFileSize lowers the process's RLIMIT_FSIZE to n bytes and returns
// the function that restores it. The limit holds for the whole process, so
// no test of this package may run in parallel with it (none does).
func limitFileSize(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: min(n, old.Max), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore = func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore) // also when the test fails with the limit on
	return restore
}

// viewer is a WebSocket client of a session's topic, served by the hub as
// the web server does; it collects the text messages it receives.
type viewer struct {
	msgs chan stream.Envelope
}

func watchTopic(t *testing.T, hub *stream.Hub, id string) *viewer {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			hub.Serve(r.Context(), conn, id, 0, nil)
		}
	}))
	t.Cleanup(srv.Close)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	v := &viewer{msgs: make(chan stream.Envelope, 1<<16)}
	go func() {
		defer close(v.msgs)
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var env struct {
				stream.Envelope
				Data json.RawMessage `json:"data"`
			}
			if typ == websocket.TextMessage && json.Unmarshal(data, &env) == nil {
				env.Envelope.Data = env.Data
				v.msgs <- env.Envelope
			}
		}
	}()
	return v
}

// await returns the first message for which match holds, failing after a
// generous deadline.
func (v *viewer) await(t *testing.T, what string, match func(typ string, data json.RawMessage) bool) json.RawMessage {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case env, ok := <-v.msgs:
			if !ok {
				t.Fatalf("the stream ended before %s", what)
			}
			if data := env.Data.(json.RawMessage); match(env.Type, data) {
				return data
			}
		case <-deadline:
			t.Fatalf("no %s on the stream", what)
		}
	}
}

func isNotice(level string) func(string, json.RawMessage) bool {
	return func(typ string, data json.RawMessage) bool {
		var n NoticeEvent
		return typ == "notice" && json.Unmarshal(data, &n) == nil && n.Code == NoticeCheckpoint && n.Level == level
	}
}

// TestCheckpointOnFullDisk makes a checkpoint write fail for real, as on a
// full disk, and checks that it changes nothing stored (the previous
// checkpoint stays byte for byte, no partial file is left, the history
// stays whole), that the owner and viewers are told which checkpoint is
// kept, that training goes on, and that the next checkpoint that succeeds
// ends the warning.
func TestCheckpointOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	cases := []struct {
		name     string
		previous bool   // a checkpoint exists before the failing one
		kept     string // what the warning says is kept
	}{
		{"the previous checkpoint is kept", true, "; the checkpoint at batch %d of epoch 1 is kept"},
		{"no checkpoint yet", false, "; there is no earlier checkpoint, so a restart would train from the start again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m, hub := openManager(t, dir, 1)
			defer func() { closeManager(t, m, hub) }() // the last manager opened
			// 40 batches an epoch: the checkpoints below are pauses, mid-epoch.
			s, _, err := m.Create(Settings{Name: "big", Layers: bigDense, Optimizer: "adam", BatchSize: 100, Epochs: 3})
			if err != nil {
				t.Fatal(err)
			}
			path := m.Store().CheckpointPath(s.ID())
			v := watchTopic(t, hub, s.ID())
			if err := s.Control(ActionStart); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a few batches", func() bool { return s.Record().Step >= 3 })
			var before []byte // the checkpoint that must survive
			keptStep := int64(-1)
			if tc.previous {
				if err := s.Control(ActionPause); err != nil {
					t.Fatal(err)
				}
				keptStep = s.Record().CheckpointStep
				if before, err = os.ReadFile(path); err != nil || keptStep < 3 {
					t.Fatalf("no checkpoint after a pause: %v, step %d", err, keptStep)
				}
				if err := s.Control(ActionResume); err != nil {
					t.Fatal(err)
				}
			}
			from := s.Record().Step
			waitFor(t, "batches after the checkpoint", func() bool { return s.Record().Step >= from+2 })
			if err := m.Sync(); err != nil {
				t.Fatal(err)
			}
			eventsBefore, err := m.Store().Events(s.ID(), 0)
			if err != nil {
				t.Fatal(err)
			}
			db, err := os.Stat(filepath.Join(dir, "cnnviz.db"))
			if err != nil || db.Size() > fileSizeLimit/4 {
				t.Fatalf("the store is too large for the file size limit to spare it: %v, %d bytes", err, db.Size())
			}

			// The pause's checkpoint fails; the pause itself does not.
			restore := limitFileSize(t, fileSizeLimit)
			err = s.Control(ActionPause)
			restore()
			if err != nil {
				t.Fatalf("pause with a full disk: %v", err)
			}
			rec := s.Record()
			if rec.Status != StatusPaused {
				t.Fatalf("status %s after the failed checkpoint", rec.Status)
			}

			// Nothing stored changed: the previous checkpoint (or its
			// absence), no partial file, the record's checkpoint step.
			after, err := os.ReadFile(path)
			switch {
			case tc.previous && !bytes.Equal(after, before):
				t.Errorf("the previous checkpoint changed: %d bytes, was %d (%v)", len(after), len(before), err)
			case !tc.previous && !os.IsNotExist(err):
				t.Errorf("a failed first checkpoint left a file: %v", err)
			}
			if names := dirNames(t, filepath.Dir(path)); tc.previous && !slices.Equal(names, []string{filepath.Base(path)}) || !tc.previous && len(names) != 0 {
				t.Errorf("checkpoint folder holds %q", names)
			}
			if rec.CheckpointStep != keptStep {
				t.Errorf("record says checkpoint step %d, want %d", rec.CheckpointStep, keptStep)
			}

			// The owner and viewers are told, clearly, without server paths.
			want := "checkpoint at batch " + itoa(rec.Step) + " of epoch 1 failed: write: file too large"
			if tc.previous {
				want += strings.Replace(tc.kept, "%d", itoa(keptStep), 1)
			} else {
				want += tc.kept
			}
			if got := s.Info().Warning; got != want {
				t.Errorf("warning %q\nwant    %q", got, want)
			}
			var n NoticeEvent
			json.Unmarshal(v.await(t, "checkpoint warning", isNotice(LevelWarning)), &n)
			if n.Message != want || n.Step != rec.Step {
				t.Errorf("viewers got notice %+v, want %q at step %d", n, want, rec.Step)
			}
			v.await(t, "state with the warning", func(typ string, data json.RawMessage) bool {
				var info Info
				return typ == "state" && json.Unmarshal(data, &info) == nil && info.Warning == want
			})

			// The history is whole: every event stored before is still
			// there, followed by the notice, and every batch has its point.
			if err := m.Sync(); err != nil {
				t.Fatal(err)
			}
			events, err := m.Store().Events(s.ID(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) < len(eventsBefore) || !slices.EqualFunc(events[:len(eventsBefore)], eventsBefore, func(a, b Event) bool {
				return a.Seq == b.Seq && bytes.Equal(a.Data, b.Data)
			}) {
				t.Errorf("stored history changed: %d events, %d before", len(events), len(eventsBefore))
			}
			if activeWarning(events) != want {
				t.Errorf("the stored history does not end with the warning")
			}
			checkPoints(t, s, rec.Step)

			// A restart keeps the warning while the disk is still full (the
			// shutdown's checkpoint fails too).
			restore = limitFileSize(t, fileSizeLimit)
			closeManager(t, m, hub)
			restore()
			m, hub = openManager(t, dir, 1)
			if s, err = m.Get(s.ID()); err != nil {
				t.Fatal(err)
			}
			if got := s.Info().Warning; got != want {
				t.Errorf("after a restart the warning is %q", got)
			}
			if got, _ := os.ReadFile(path); tc.previous && !bytes.Equal(got, before) {
				t.Error("the previous checkpoint changed at shutdown")
			}
			v = watchTopic(t, hub, s.ID())

			// Training goes on, and the next checkpoint that succeeds ends
			// the warning.
			if err := s.Control(ActionResume); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "training after the failure", func() bool { return s.Record().Step >= rec.Step+2 })
			if err := s.Control(ActionPause); err != nil {
				t.Fatal(err)
			}
			ok := s.Record()
			if ok.CheckpointStep != ok.Step {
				t.Errorf("checkpoint step %d after a good pause at step %d", ok.CheckpointStep, ok.Step)
			}
			if _, _, st, err := engine.LoadCheckpoint(path); err != nil || st.Batch != int(ok.Step) {
				t.Errorf("the new checkpoint: %v, batch %d, want %d", err, st.Batch, ok.Step)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() <= fileSizeLimit {
				t.Errorf("the checkpoint (%v) must exceed the file size limit for this test to mean anything", err)
			}
			if w := s.Info().Warning; w != "" {
				t.Errorf("warning %q after a good checkpoint", w)
			}
			json.Unmarshal(v.await(t, "the end of the warning", isNotice(LevelOK)), &n)
			if n.Step != ok.Step || !strings.Contains(n.Message, "written") {
				t.Errorf("viewers got notice %+v after a good checkpoint", n)
			}
		})
	}
}

// checkPoints checks that the stored history has one point for every
// batch, 1 to last.
func checkPoints(t *testing.T, s *Session, last int64) {
	t.Helper()
	points, _, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range points {
		if p.Step != int64(i+1) {
			t.Fatalf("point %d is for batch %d", i, p.Step)
		}
	}
	if int64(len(points)) != last {
		t.Errorf("%d points stored, want %d", len(points), last)
	}
}

// dirNames lists a folder.
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

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
