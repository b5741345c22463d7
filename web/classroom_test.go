package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cnnviz/engine/mnist"
	"cnnviz/sessions"
	"cnnviz/stream"
)

// A classroom: viewers watching one session train while some of them
// draw, against the real server on a loopback listener. TestClassroomLoad
// (load_test.go, under the "load" build tag) runs it at the size of issue 6
// and measures throughput; TestClassroomShort runs a small class in the
// normal suite for what needs no clock: nobody is disconnected, every
// prediction is answered, every viewer gets the final status, and the
// goroutines go back to their count before the class came.

// classroomConfig is the size of a class and the session it watches.
type classroomConfig struct {
	Data        string        // MNIST folder; "" for the full set in the module cache
	Preset      string        // the session's preset
	Epochs      int           // 0: the preset's
	Viewers     int           // WebSockets that only watch
	Drawers     int           // WebSockets that also draw, in addition to the viewers
	Rate        float64       // predictions a second per drawer, at most defaultPredictRate
	Duration    time.Duration // the measured window of each phase
	HeapProfile string        // if set, a heap profile is written there at the end of each load window
}

// Bounds that keep a class a bounded load on a loopback listener, not a
// way to exhaust the machine.
const (
	maxLoadClients  = 2000
	maxLoadDuration = 10 * time.Minute
	// goroutineSlack is how many goroutines above the count before the
	// clients connected may remain once they have all left (a timer or an
	// idle HTTP connection finishing on its own).
	goroutineSlack = 2
	// settleTimeout bounds the wait for goroutines to return to the
	// baseline, for every viewer to receive the final status, and for a
	// prediction's answer (the browser gives up after 10 s too).
	settleTimeout = 10 * time.Second
	// warmupSteps are trained before the throughput clock starts, so
	// that buffer allocation and the first frames are not measured.
	warmupSteps = 3
)

func (cfg classroomConfig) check() error {
	switch {
	case cfg.Viewers < 0 || cfg.Drawers < 0 || cfg.Viewers+cfg.Drawers > maxLoadClients:
		return fmt.Errorf("viewers and drawers: want 0..%d clients in all", maxLoadClients)
	case cfg.Rate <= 0 || cfg.Rate > defaultPredictRate:
		return fmt.Errorf("rate: want (0, %d], the server's limit per connection", defaultPredictRate)
	case cfg.Duration <= 0 || cfg.Duration > maxLoadDuration:
		return fmt.Errorf("duration: want up to %v", maxLoadDuration)
	}
	return nil
}

// settings is the body of the POST that creates a phase's session.
func (cfg classroomConfig) settings(phase string) string {
	s := map[string]any{"name": "classroom: " + phase, "preset": cfg.Preset}
	if cfg.Epochs > 0 {
		s["epochs"] = cfg.Epochs
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// TestClassroomShort is a small class on the test subset: 20 viewers and
// 2 drawers for 2 s of a tiny session. It asserts nothing about time.
func TestClassroomShort(t *testing.T) {
	cfg := classroomConfig{Data: "../testdata/mnist", Preset: "tiny", Epochs: 100,
		Viewers: 20, Drawers: 2, Rate: 5, Duration: 2 * time.Second}
	e := startLoadEnv(t, cfg.Data)
	p := e.runPhase(t, cfg, "short", true)
	r := &loadReport{}
	p.clients.report(r, p)
	t.Log("\n" + r.String())
	if p.clients.failed {
		t.Error("the clients saw failures (above)")
	}
	if p.steps == 0 {
		t.Error("the session trained no batch while the class watched")
	}
}

// loadEnv is the server under test and an HTTP client of its own.
type loadEnv struct {
	srv  *httptest.Server
	mgr  *sessions.Manager
	hub  *stream.Hub
	test *mnist.Set
	// api has a transport of its own, so that its idle keep-alive
	// connections (a goroutine on each side) can be closed before
	// goroutines are counted.
	api *http.Client
}

// startLoadEnv starts the server on the MNIST set in dataDir ("" for the
// full set in the module cache, which must then be there).
func startLoadEnv(t *testing.T, dataDir string) *loadEnv {
	t.Helper()
	full := dataDir == ""
	dir, err := mnist.Locate(dataDir)
	if err != nil && full {
		t.Fatalf("the load test trains on the full MNIST set: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := mnist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if full && (train.Len() != 60000 || test.Len() != 10000) {
		t.Fatalf("%s holds %d training and %d test images, want the full 60,000 and 10,000", dir, train.Len(), test.Len())
	}
	// The product's defaults throughout, the prediction rate limit
	// included.
	env := startEnv(t, train, test, envOptions{})
	e := &loadEnv{srv: env.srv, mgr: env.mgr, hub: env.hub, test: test,
		api: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	t.Cleanup(e.api.CloseIdleConnections) // runs before the server's shutdown
	return e
}

// call sends an API request as a browser or script would and decodes the
// JSON answer into out, failing the test on any status but want.
func (e *loadEnv) call(t *testing.T, method, path, token, body string, want int, out any) {
	t.Helper()
	resp, err := e.api.Do(apiRequest(t, method, e.srv.URL+path, token, body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, data)
		}
	}
}

// phaseResult is what one phase measured.
type phaseResult struct {
	name          string
	batch         int
	steps         int64         // batches trained in the measured window
	elapsed       time.Duration // the window's length
	epochs        int           // epochs completed in the window
	maxStall      time.Duration // the longest time the step count stood still (epoch ends evaluate the test set)
	cpu           string        // the process's CPU time over the window, in cores
	heapPeak      uint64        // runtime.MemStats.HeapInuse, sampled every second (garbage included)
	livePeak      uint64        // the heap live after the last GC, likewise
	sysPeak       uint64        // runtime.MemStats.Sys, likewise
	goroutinePeak int
	clients       *loadClass // nil for a baseline
}

func (p *phaseResult) imagesPerSec() float64 {
	return float64(p.steps) * float64(p.batch) / p.elapsed.Seconds()
}

// runPhase creates a session through the API, connects the class when load
// is set, trains for cfg.Duration after a warm-up, stops the session and
// sends the class home.
func (e *loadEnv) runPhase(t *testing.T, cfg classroomConfig, name string, load bool) *phaseResult {
	t.Helper()
	var created createResponse
	e.call(t, "POST", "/api/sessions", "", cfg.settings(name), http.StatusCreated, &created)
	sess, err := e.mgr.Get(created.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := &phaseResult{name: name, batch: sess.Record().Config.BatchSize}

	var class *loadClass
	if load {
		e.api.CloseIdleConnections()
		class = &loadClass{cfg: cfg, goroutinesBefore: loadSettledGoroutines()}
		class.heapBefore = collectedHeap()
		class.connect(t, e, created.ID)
		p.clients = class
	}

	e.call(t, "POST", "/api/sessions/"+created.ID+"/start", created.OwnerToken, "", http.StatusOK, nil)
	for warm := time.Now(); sess.Record().Step < warmupSteps; {
		if time.Since(warm) > 6*settleTimeout { // only a broken server takes this long
			rec := sess.Record()
			t.Fatalf("%s: the session is %s (%s) at step %d, not training", name, rec.Status, rec.StatusReason, rec.Step)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The window starts at a step boundary as nearly as polling allows.
	rec := sess.Record()
	step0, epoch0 := rec.Step, rec.Epoch
	start := time.Now()
	cpu0 := loadProcessCPU()
	if class != nil {
		class.startWindow(e.hub)
	}

	end := start.Add(cfg.Duration)
	lastStep, lastChange := step0, start
	nextSample := start
	for now := time.Now(); now.Before(end); now = time.Now() {
		if !now.Before(nextSample) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			p.heapPeak, p.sysPeak = max(p.heapPeak, ms.HeapInuse), max(p.sysPeak, ms.Sys)
			p.livePeak = max(p.livePeak, liveHeap())
			p.goroutinePeak = max(p.goroutinePeak, runtime.NumGoroutine())
			nextSample = nextSample.Add(time.Second)
		}
		if s := sess.Record().Step; s != lastStep {
			lastStep, lastChange = s, now
		}
		p.maxStall = max(p.maxStall, now.Sub(lastChange))
		time.Sleep(min(20*time.Millisecond, time.Until(end)))
	}
	if cfg.HeapProfile != "" && load {
		writeHeapProfile(t, cfg.HeapProfile)
	}
	rec = sess.Record()
	p.elapsed = time.Since(start)
	p.steps, p.epochs = rec.Step-step0, rec.Epoch-epoch0
	p.cpu = loadCPUCores(cpu0, loadProcessCPU(), p.elapsed)
	if class != nil {
		class.endWindow(e.hub, p.elapsed)
	}

	var info sessions.Info
	e.call(t, "POST", "/api/sessions/"+created.ID+"/stop", created.OwnerToken, "", http.StatusOK, &info)
	if info.Status != sessions.StatusStopped || info.Step < rec.Step {
		t.Errorf("%s: after stop the API says %s at step %d; the window ended at step %d", name, info.Status, info.Step, rec.Step)
	}
	if class != nil {
		class.leave(t, e)
	}
	return p
}

// loadClass is the class of the load phase and what they saw.
type loadClass struct {
	cfg        classroomConfig
	viewers    []*loadClient
	predictors []*loadDrawer

	goroutinesBefore, goroutinesAfter int
	settleTime                        time.Duration
	heapBefore, heapAfter             uint64

	windowStart          time.Time
	viewerCounts         [][3]int64 // per viewer at the window's start: text, binary, bytes
	statsStart, statsEnd stream.Stats
	window               time.Duration
	viewerWindow         [][3]int64 // per viewer over the window

	mu       sync.Mutex // guards problems and failed: clients close in parallel
	problems []string
	failed   bool
}

func (c *loadClass) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// connect opens every viewer's and every drawing client's WebSocket; they
// start reading at once, as a page does.
func (c *loadClass) connect(t *testing.T, e *loadEnv, id string) {
	t.Helper()
	cfg := c.cfg
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/sessions/" + id
	dialer := websocket.Dialer{HandshakeTimeout: settleTimeout}
	header := http.Header{"Origin": {e.srv.URL}} // a page of this server
	dial := func() *loadClient {
		conn, resp, err := dialer.Dial(url, header)
		if err != nil {
			t.Fatalf("connecting client %d: %v", len(c.viewers)+len(c.predictors)+1, err)
		}
		resp.Body.Close()
		return newLoadClient(conn)
	}
	for range cfg.Viewers {
		v := dial()
		goClient(func() { v.read(nil) })
		c.viewers = append(c.viewers, v)
	}
	for i := range cfg.Drawers {
		d := newLoadDrawer(dial(), e.test, i)
		goClient(func() { d.read(d.onMessage) })
		c.predictors = append(c.predictors, d)
	}
}

// goClient runs f, a client's work, on a goroutine labelled side=client,
// so that a CPU profile of the test (-cpuprofile) tells the clients' share
// from the server's: go tool pprof -tagfocus side=client.
func goClient(f func()) {
	go pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) { f() })
}

func (c *loadClass) startWindow(h *stream.Hub) {
	c.windowStart = time.Now()
	c.statsStart = h.Stats()
	c.viewerCounts = make([][3]int64, len(c.viewers))
	for i, v := range c.viewers {
		c.viewerCounts[i] = v.counts()
	}
	period := time.Duration(float64(time.Second) / c.cfg.Rate)
	for _, d := range c.predictors {
		// Pupils do not start drawing in step: a random phase each.
		first := c.windowStart.Add(rand.N(period))
		goClient(func() { d.draw(first, period) })
	}
}

// endWindow stops the drawing (each client's request in flight is still
// answered) and takes the viewers' counts.
func (c *loadClass) endWindow(h *stream.Hub, window time.Duration) {
	c.window = window
	c.viewerWindow = make([][3]int64, len(c.viewers))
	for i, v := range c.viewers {
		now := v.counts()
		for j := range now {
			c.viewerWindow[i][j] = now[j] - c.viewerCounts[i][j]
		}
	}
	c.statsEnd = h.Stats()
	for _, d := range c.predictors {
		close(d.stop)
	}
	for _, d := range c.predictors {
		<-d.finished
	}
}

// leave waits for every client to receive the session's final status (a
// client stuck behind would not), closes every connection as a browser
// tab does, and waits for the goroutines to return to their count before
// the class arrived.
func (c *loadClass) leave(t *testing.T, e *loadEnv) {
	t.Helper()
	all := append([]*loadClient(nil), c.viewers...)
	for _, d := range c.predictors {
		all = append(all, d.loadClient)
	}
	deadline := time.Now().Add(settleTimeout)
	for i, cl := range all {
		for !cl.sawStopped.Load() && time.Now().Before(deadline) && !cl.ended() {
			time.Sleep(10 * time.Millisecond)
		}
		if !cl.sawStopped.Load() {
			c.fail("client %d did not receive the session's final status within %v", i+1, settleTimeout)
		}
	}
	for i, cl := range all {
		if err := cl.unexpected(); err != nil {
			c.fail("client %d was disconnected: %v", i+1, err)
		}
	}
	var wg sync.WaitGroup
	for i, cl := range all {
		wg.Go(func() {
			if err := cl.close(); err != nil {
				c.fail("client %d did not close cleanly: %v", i+1, err)
			}
		})
	}
	wg.Wait()

	// What the test itself holds (the drawings, the connections' buffers)
	// is let go, so that the heap after is the server's.
	for _, cl := range all {
		if cl.ended() {
			cl.conn = nil
		}
	}
	for _, d := range c.predictors {
		d.drawings = nil
	}
	e.api.CloseIdleConnections()
	start := time.Now()
	for {
		c.goroutinesAfter = runtime.NumGoroutine()
		if c.goroutinesAfter <= c.goroutinesBefore+goroutineSlack || time.Since(start) > settleTimeout {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.settleTime = time.Since(start)
	if c.goroutinesAfter > c.goroutinesBefore+goroutineSlack {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Logf("goroutines still running:\n%s", b.String())
		c.fail("goroutines: %d after the clients left, %d before they came (slack %d)", c.goroutinesAfter, c.goroutinesBefore, goroutineSlack)
	}
	c.heapAfter = collectedHeap()
}

func (c *loadClass) report(r *loadReport, p *phaseResult) {
	secs := c.window.Seconds()
	r.line("")
	r.line("%s:", p.name)
	if n := len(c.viewers); n > 0 {
		col := func(j int) []int64 {
			v := make([]int64, n)
			for i := range c.viewerWindow {
				v[i] = c.viewerWindow[i][j]
			}
			slices.Sort(v)
			return v
		}
		text, bin, byt := col(0), col(1), col(2)
		mmm := func(v []int64) string { return fmt.Sprintf("%d / %d / %d", v[0], v[n/2], v[n-1]) }
		r.line("per viewer over the %.0f s window (min / median / max), %d viewers:", secs, n)
		r.line("  image frames (binary)  %s  (median %.1f/s; the runner publishes filters every 200 ms, maps every 400 ms, both at an epoch's end)", mmm(bin), float64(bin[n/2])/secs)
		r.line("  JSON messages          %s  (median %.1f/s)", mmm(text), float64(text[n/2])/secs)
		r.line("  bytes                  %s / %s / %s  (median %s/s)", loadBytes(byt[0]), loadBytes(byt[n/2]), loadBytes(byt[n-1]), loadBytes(int64(float64(byt[n/2])/secs)))
	}
	s0, s1 := c.statsStart, c.statsEnd
	r.line("hub over the window: %d messages written, %d latest-wins frames replaced unsent, %d private dropped, %d clients dropped as too slow",
		s1.Sent-s0.Sent, s1.Replaced-s0.Replaced, s1.PrivateDropped-s0.PrivateDropped, s1.Dropped-s0.Dropped)

	if len(c.predictors) > 0 {
		var sent, answered, correct, failures int
		var answer, maps []time.Duration
		for _, d := range c.predictors {
			sent += d.sent
			answered += d.answered
			correct += d.correct
			failures += len(d.failures)
			answer = append(answer, d.answerRTT...)
			maps = append(maps, d.mapsRTT...)
			for _, f := range d.failures {
				c.fail("drawing client %d: %s", d.index+1, f)
			}
		}
		r.line("")
		r.line("predictions: %d sent (%.2f/s per client, asked %.3g), %d answered, %d failed; %.1f%% read as the test image's label",
			sent, float64(sent)/secs/float64(len(c.predictors)), c.cfg.Rate, answered, failures, 100*float64(correct)/float64(max(answered, 1)))
		r.line("  round trip to the answer (JSON)        median %s, p99 %s, max %s", loadPct(answer, 50), loadPct(answer, 99), loadPct(answer, 100))
		r.line("  round trip to the maps (kind-3 frame)  median %s, p99 %s, max %s", loadPct(maps, 50), loadPct(maps, 99), loadPct(maps, 100))
	}
	r.line("")
	r.line("goroutines: %d before the clients connected, %d at the peak, %d after they left (%.1f s to settle; slack %d)",
		c.goroutinesBefore, p.goroutinePeak, c.goroutinesAfter, c.settleTime.Seconds(), goroutineSlack)
	r.line("live heap: %s before the clients connected, %s at the peak, %s after they left (before and after: after two GCs); sys peak %s",
		loadMiB(c.heapBefore), loadMiB(p.livePeak), loadMiB(c.heapAfter), loadMiB(p.sysPeak))
	r.line("  (server and clients share the process; a client holds gorilla's 4 KiB read and write buffers)")
	if len(c.problems) > 0 {
		r.line("")
		r.line("FAILURES:")
		for _, pr := range c.problems {
			r.line("  %s", pr)
		}
	}
}

// loadClient is one browser tab on the session's stream: it reads every
// message, counts it, and notices the session's final status.
type loadClient struct {
	conn                *websocket.Conn
	text, binary, bytes atomic.Int64
	sawStopped          atomic.Bool
	closing             atomic.Bool // set before we close: a read error is then expected
	done                chan struct{}
	err                 error // why reading ended; read after done
}

func newLoadClient(conn *websocket.Conn) *loadClient {
	return &loadClient{conn: conn, done: make(chan struct{})}
}

func (c *loadClient) counts() [3]int64 {
	return [3]int64{c.text.Load(), c.binary.Load(), c.bytes.Load()}
}

// loadFinalStatus starts the "status" message a stopped session sends last.
var loadFinalStatus = []byte(`{"type":"status"`)

// read reads until the connection ends. Text messages are read whole (a
// page parses them all); image frames are discarded as they arrive, unless
// handle wants them too.
func (c *loadClient) read(handle func(typ int, data []byte)) {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		typ, r, err := c.conn.NextReader()
		if err != nil {
			c.err = err
			return
		}
		var n int64
		if typ == websocket.TextMessage || handle != nil {
			buf.Reset()
			n, err = buf.ReadFrom(r)
		} else {
			n, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			c.err = err
			return
		}
		c.bytes.Add(n)
		if typ == websocket.BinaryMessage {
			c.binary.Add(1)
		} else {
			c.text.Add(1)
			if data := buf.Bytes(); bytes.HasPrefix(data, loadFinalStatus) && bytes.Contains(data, []byte(`"status":"stopped"`)) {
				c.sawStopped.Store(true)
			}
		}
		if handle != nil {
			handle(typ, buf.Bytes())
		}
	}
}

func (c *loadClient) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// unexpected returns why the connection ended, if it did before the
// client chose to leave.
func (c *loadClient) unexpected() error {
	if c.ended() {
		if c.err == nil {
			return errors.New("the connection ended")
		}
		return c.err
	}
	return nil
}

// close leaves as a browser tab does: a close frame (1000), then the
// server's reply, then the TCP connection is closed.
func (c *loadClient) close() error {
	c.closing.Store(true)
	defer c.conn.Close()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(settleTimeout)); err != nil {
		return fmt.Errorf("writing the close frame: %w", err)
	}
	select {
	case <-c.done:
	case <-time.After(settleTimeout):
		return fmt.Errorf("no close reply within %v", settleTimeout)
	}
	if !websocket.IsCloseError(c.err, websocket.CloseNormalClosure) {
		return fmt.Errorf("the server's reply to our close: %v", c.err)
	}
	return nil
}

// loadDrawer is a pupil at the drawing pad: it sends a drawing at most every
// period, one at a time as the page does (the next waits for the answer),
// and times each answer.
type loadDrawer struct {
	*loadClient
	index    int
	drawings []loadDrawing
	results  chan loadResult
	stop     chan struct{}
	finished chan struct{}

	// Written by draw only, read after finished.
	sent, answered, correct int
	answerRTT, mapsRTT      []time.Duration
	failures                []string
}

type loadDrawing struct {
	pixels string // base64 of 140x140 bytes, as the pad sends
	label  uint8
}

type loadResult struct {
	id    uint64
	at    time.Time
	maps  bool   // the kind-3 frame, else the JSON answer
	digit int    // in the JSON answer
	err   string // an "error" answer
}

// newLoadDrawer prepares a client's drawings: test images scaled 5x to
// 140x140, the size the drawing pad sends, a different set per client.
func newLoadDrawer(c *loadClient, test *mnist.Set, index int) *loadDrawer {
	d := &loadDrawer{loadClient: c, index: index, results: make(chan loadResult, 8),
		stop: make(chan struct{}), finished: make(chan struct{})}
	px := make([]uint8, 140*140)
	for k := range 25 {
		i := (index*25 + k) % test.Len()
		img := test.Image(i)
		for y := range 140 {
			for x := range 140 {
				px[y*140+x] = img[(y/5)*28+x/5]
			}
		}
		d.drawings = append(d.drawings, loadDrawing{pixels: base64.StdEncoding.EncodeToString(px), label: test.Labels[i]})
	}
	return d
}

// onMessage picks the answers out of the stream. With one request in
// flight at most two results wait, so the send never blocks the reader.
func (d *loadDrawer) onMessage(typ int, data []byte) {
	now := time.Now()
	var r loadResult
	switch {
	case typ == websocket.BinaryMessage:
		if len(data) < 10 || data[1] != stream.KindPrediction {
			return
		}
		r = loadResult{id: binary.LittleEndian.Uint64(data[2:10]), at: now, maps: true}
	case bytes.HasPrefix(data, []byte(`{"type":"prediction"`)), bytes.HasPrefix(data, []byte(`{"type":"error"`)):
		var env struct {
			Type string
			Data struct {
				ID      uint64
				Digit   int
				Message string
			}
		}
		if err := json.Unmarshal(data, &env); err != nil {
			r = loadResult{err: fmt.Sprintf("undecodable answer: %v", err)}
		} else {
			r = loadResult{id: env.Data.ID, at: now, digit: env.Data.Digit}
			if env.Type == "error" {
				r.err = env.Data.Message
			}
		}
	default:
		return
	}
	select {
	case d.results <- r:
	default:
		// Cannot happen with one request in flight; draw reports it as
		// a missing answer if it does.
	}
}

// draw sends drawings from first on, one every period (or as soon as the
// previous answer is in, if that took longer), until stop is closed.
func (d *loadDrawer) draw(first time.Time, period time.Duration) {
	defer close(d.finished)
	next := first
	for id := uint64(1); ; id++ {
		select {
		case <-d.stop:
			return
		case <-time.After(time.Until(next)):
		}
		dr := d.drawings[int(id)%len(d.drawings)]
		msg := `{"type":"predict","id":` + strconv.FormatUint(id, 10) + `,"width":140,"height":140,"pixels":"` + dr.pixels + `"}`
		sentAt := time.Now()
		if err := d.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			d.failures = append(d.failures, fmt.Sprintf("request %d: %v", id, err))
			return
		}
		d.sent++
		if !d.await(id, sentAt, dr.label) {
			return
		}
		if next = next.Add(period); next.Before(time.Now()) {
			next = time.Now() // a slow answer: send at once, without catching up
		}
	}
}

// await waits for request id's answer and maps, and records them. It
// reports whether to go on.
func (d *loadDrawer) await(id uint64, sentAt time.Time, label uint8) bool {
	timeout := time.NewTimer(settleTimeout)
	defer timeout.Stop()
	var gotAnswer, gotMaps bool
	for !gotAnswer || !gotMaps {
		select {
		case r := <-d.results:
			switch {
			case r.id != id && (r.id != 0 || r.err == ""):
				continue // a late part of an earlier request
			case r.err != "":
				d.failures = append(d.failures, fmt.Sprintf("request %d: error answer: %s", id, r.err))
				return true
			case r.maps:
				gotMaps = true
				d.mapsRTT = append(d.mapsRTT, r.at.Sub(sentAt))
			default:
				gotAnswer = true
				d.answerRTT = append(d.answerRTT, r.at.Sub(sentAt))
				if r.digit == int(label) {
					d.correct++
				}
			}
		case <-d.done:
			d.failures = append(d.failures, fmt.Sprintf("request %d: the connection ended: %v", id, d.err))
			return false
		case <-timeout.C:
			d.failures = append(d.failures, fmt.Sprintf("request %d: no complete answer within %v (answer %v, maps %v)", id, settleTimeout, gotAnswer, gotMaps))
			return true
		}
	}
	d.answered++
	return true
}

// loadSettledGoroutines counts goroutines once the count has stopped falling
// (goroutines of earlier phases, an HTTP connection closing, may still be
// finishing).
func loadSettledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

func writeHeapProfile(t *testing.T, name string) {
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// collectedHeap returns the live heap after two GCs: the second empties
// the sync.Pools' victim caches (the prediction models among them), so
// that what a pool keeps for a while is not taken for a leak.
func collectedHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return liveHeap()
}

// liveHeap returns the bytes of heap found live by the last GC.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// loadProcessCPU returns the process's user+system CPU time in clock ticks
// from /proc/self/stat, or -1 where there is no /proc.
func loadProcessCPU() int64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// loadCPUCores is the CPU time between two loadProcessCPU readings as a number of
// cores busy over d. Linux counts 100 ticks a second (USER_HZ).
func loadCPUCores(t0, t1 int64, d time.Duration) string {
	if t0 < 0 || t1 < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(t1-t0)/100/d.Seconds())
}

// loadAverage returns the 1, 5 and 15 minute load averages, as uptime
// prints them.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

// loadBytes formats a count of bytes in KiB or MiB.
func loadBytes(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func loadMiB(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// pct returns the p-th percentile of ds (100: the maximum), rounded.
func loadPct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)*p/100, len(s)-1)
	return s[i].Round(10 * time.Microsecond).String()
}

// loadReport collects the report's lines.
type loadReport struct{ b strings.Builder }

func (r *loadReport) line(format string, args ...any) {
	fmt.Fprintf(&r.b, format+"\n", args...)
}

func (r *loadReport) String() string { return r.b.String() }
