package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cnnviz/engine"
	"cnnviz/sessions"
)

// TestMain lets the test binary act as the viz command: with
// CNNVIZ_RUN_MAIN=1 it runs main's run() on its arguments, so that tests
// can start, kill -9 and restart a real server process without building a
// second binary.
func TestMain(m *testing.M) {
	if os.Getenv("CNNVIZ_RUN_MAIN") == "1" {
		args := os.Args[1:]
		for i, a := range args { // drop the test flags before "--"
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		main2(args)
		return
	}
	os.Exit(m.Run())
}

// main2 is main with explicit arguments.
func main2(args []string) {
	os.Args = append([]string{"viz"}, args...)
	main()
}

// vizProcess is a viz server running as a child process.
type vizProcess struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
}

var runningAt = regexp.MustCompile(`cnnviz is running at (http://[^/ ]+)/`)

// startViz starts a viz server on dataDir with the MNIST subset, adding
// extra to its flags.
func startViz(t *testing.T, dataDir string, extra ...string) *vizProcess {
	t.Helper()
	args := []string{"-test.run=^$", "--",
		"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--data", filepath.Join("..", "..", "testdata", "mnist"), "--starter=false"}
	cmd := exec.Command(os.Args[0], append(args, extra...)...)
	cmd.Env = append(os.Environ(), "CNNVIZ_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if m := runningAt.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			p := &vizProcess{cmd: cmd, base: m[1]}
			p.waitHealthy(t)
			return p
		}
	}
	t.Fatalf("viz exited before listening: %v", lines.Err())
	return nil
}

func (p *vizProcess) waitHealthy(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatal("viz never became healthy")
}

func (p *vizProcess) call(t *testing.T, method, path, token, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (p *vizProcess) info(t *testing.T, id string) sessions.Info {
	t.Helper()
	var info sessions.Info
	p.call(t, "GET", "/api/sessions/"+id, "", "", &info)
	return info
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(120 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestKillDuringTraining kills a real server process with SIGKILL in the
// middle of an epoch, starts a new one on the same data folder, and checks
// that the session is listed with its history, has lost at most the epoch
// in progress, resumes from its checkpoint and trains to the end.
func TestKillDuringTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	p := startViz(t, dir)
	var created struct{ ID, OwnerToken string }
	p.call(t, "POST", "/api/sessions", "", `{"preset": "tiny", "epochs": 3}`, &created)
	p.call(t, "POST", "/api/sessions/"+created.ID+"/start", created.OwnerToken, "", nil)
	poll(t, "the middle of epoch 2", func() bool {
		i := p.info(t, created.ID)
		return i.Epoch >= 1 && i.Batch >= 20
	})
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	p.cmd.Wait()

	q := startViz(t, dir)
	var list []sessions.Info
	q.call(t, "GET", "/api/sessions", "", "", &list)
	if len(list) != 1 || list[0].ID != created.ID {
		t.Fatalf("after the restart the sessions are %+v", list)
	}
	info := list[0]
	if len(info.Epochs) < 1 || info.Step < int64(info.BatchesPerEpoch) {
		t.Errorf("lost a completed epoch: %d epochs, step %d", len(info.Epochs), info.Step)
	}
	if info.Status != sessions.StatusRunning && info.Status != sessions.StatusQueued && info.Status != sessions.StatusFinished {
		t.Errorf("status %s after restart, want it training again", info.Status)
	}
	var history []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	q.call(t, "GET", "/api/sessions/"+created.ID+"/history", "", "", &history)
	kinds := map[string]int{}
	for _, h := range history {
		kinds[h.Type]++
	}
	if kinds["metrics"] == 0 || kinds["epoch"] < 1 || kinds["rewind"] != 1 {
		t.Errorf("history after the kill: %v (want metrics, an epoch and one rewind)", kinds)
	}
	poll(t, "training to finish after the restart", func() bool { return q.info(t, created.ID).Status == sessions.StatusFinished })
	final := q.info(t, created.ID)
	if len(final.Epochs) != 3 || final.Step != int64(3*final.BatchesPerEpoch) {
		t.Errorf("finished with %d epochs at step %d", len(final.Epochs), final.Step)
	}
	// The checkpoint the server serves is a valid one at the end of training.
	resp, err := http.Get(q.base + "/api/sessions/" + created.ID + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "final.ckpt")
	f, _ := os.Create(ckpt)
	io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()
	_, _, st, err := engine.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 3 {
		t.Errorf("checkpoint at epoch %d, want 3", st.Epoch)
	}
	// A graceful stop (SIGTERM) exits cleanly.
	if err := q.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("viz exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("viz did not exit after SIGINT")
	}
}
