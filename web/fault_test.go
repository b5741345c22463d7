package web

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cnnviz/sessions"
	"cnnviz/stream"
)

// The fault tests: viewers that misbehave at the socket level, and a
// shutdown with viewers connected. Every wait polls with a generous
// deadline; none of them measures time.

// patience bounds every wait; it only matters when a test is failing.
const patience = 60 * time.Second

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// rawViewer is a WebSocket client written by hand on a TCP connection, so
// that a test can stop reading, or hang up, in the middle of a frame.
type rawViewer struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

// dialRaw opens a session's stream with a hand-made handshake. A
// readBuffer above 0 shrinks the socket's receive buffer first, so that a
// viewer that does not read fills it quickly.
func dialRaw(t *testing.T, e *apiEnv, id string, readBuffer int) *rawViewer {
	t.Helper()
	host := strings.TrimPrefix(e.srv.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	if readBuffer > 0 {
		if err := conn.SetReadBuffer(readBuffer); err != nil {
			t.Fatal(err)
		}
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	fmt.Fprintf(conn, "GET /ws/sessions/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", id, host, key)
	// A small buffer: after the handshake the reader holds back little
	// of what the server sends.
	r := bufio.NewReaderSize(conn, 16)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("handshake answered %s %v", resp.Status, resp.Header)
	}
	return &rawViewer{conn: conn, r: r}
}

// frame is a server frame's header: server frames are never masked.
type frame struct {
	opcode byte
	length int64
}

// header reads the next frame's header.
func (v *rawViewer) header() (frame, error) {
	var b [2]byte
	if _, err := io.ReadFull(v.r, b[:]); err != nil {
		return frame{}, err
	}
	f := frame{opcode: b[0] & 0x0f, length: int64(b[1] & 0x7f)}
	switch f.length {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(v.r, ext[:]); err != nil {
			return f, err
		}
		f.length = int64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(v.r, ext[:]); err != nil {
			return f, err
		}
		f.length = int64(binary.BigEndian.Uint64(ext[:]))
	}
	return f, nil
}

// next reads a whole frame.
func (v *rawViewer) next() (frame, []byte, error) {
	f, err := v.header()
	if err != nil {
		return f, nil, err
	}
	payload := make([]byte, f.length)
	_, err = io.ReadFull(v.r, payload)
	return f, payload, err
}

// Opcodes of RFC 6455.
const (
	opText   = 1
	opBinary = 2
	opClose  = 8
)

// goroutines returns the stack of every goroutine.
func goroutines() [][]byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Split(buf[:n], []byte("\n\n"))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// countGoroutines counts the goroutines whose stack mentions fn, or that
// do not when not is true.
func countGoroutines(fn string, not bool) int {
	count := 0
	for _, g := range goroutines() {
		if bytes.Contains(g, []byte(fn)) != not {
			count++
		}
	}
	return count
}

// streamGoroutines counts the goroutines running the hub's client code:
// two per connected viewer (its reader and its writer).
func streamGoroutines() int { return countGoroutines("cnnviz/stream.(*Client)", false) }

// steadyViewer is a well-behaved viewer: it reads all the time, and
// checks that it gets every batch's point once and in order.
type steadyViewer struct {
	t    *testing.T
	last atomic.Int64 // the last step seen
	err  chan error   // why reading stopped
}

func watchSteadily(t *testing.T, e *apiEnv, id string) *steadyViewer {
	t.Helper()
	conn := e.dial(t, id, 0).conn
	v := &steadyViewer{t: t, err: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				v.err <- err
				return
			}
			var m struct {
				Type string                `json:"type"`
				Data sessions.MetricsEvent `json:"data"`
			}
			if json.Unmarshal(data, &m) != nil || m.Type != "metrics" {
				continue // binary frames, other messages
			}
			for _, p := range m.Data.Points {
				if last := v.last.Load(); last > 0 && p.Step != last+1 {
					v.err <- fmt.Errorf("got step %d after %d", p.Step, last)
					return
				}
				v.last.Store(p.Step)
			}
		}
	}()
	return v
}

// readPast waits until the viewer has seen a point for a step after step.
func (v *steadyViewer) readPast(step int64) {
	v.t.Helper()
	for deadline := time.Now().Add(patience); v.last.Load() <= step; time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-v.err:
			v.t.Fatalf("the steady viewer stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("the steady viewer is at step %d, waiting for %d", v.last.Load(), step+1)
		}
	}
}

// startLongTraining creates a tiny session that trains for much longer than
// any of these tests, and starts it.
func startLongTraining(t *testing.T, e *apiEnv) string {
	t.Helper()
	cr := e.create(t, `{"preset": "tiny", "epochs": 50}`)
	if resp := e.do(t, "POST", "/api/sessions/"+cr.ID+"/start", cr.OwnerToken, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	return cr.ID
}

func step(e *apiEnv, id string) int64 {
	s, err := e.mgr.Get(id)
	if err != nil {
		return -1
	}
	return s.Record().Step
}

// TestViewerDisconnectsMidFrame hangs up viewers in the middle of a frame,
// in several places, while a session trains: the server drops each one
// (its goroutines end), training goes on, and a well-behaved viewer keeps
// receiving every batch.
func TestViewerDisconnectsMidFrame(t *testing.T) {
	e := startAPIEnv(t)
	id := startLongTraining(t, e)
	steady := watchSteadily(t, e, id)
	waitUntil(t, "the steady viewer to join", func() bool { return e.hub.Stats().Clients == 1 })
	steady.readPast(0)
	base := streamGoroutines()

	cases := []struct {
		name     string
		opcode   byte // the kind of frame to cut
		inHeader bool // after its first byte; else half-way through its payload
		reset    bool // hang up with a reset rather than an orderly close
	}{
		{"in a binary frame's payload", opBinary, false, false},
		{"in a binary frame's header", opBinary, true, false},
		{"in a text frame's payload", opText, false, false},
		{"in a binary frame, with a reset", opBinary, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := dialRaw(t, e, id, 0)
			waitUntil(t, "the viewer to join", func() bool { return e.hub.Stats().Clients == 2 })
			// Read whole frames until one of the kind to cut begins.
			for {
				var b [1]byte
				if _, err := io.ReadFull(v.r, b[:]); err != nil {
					t.Fatal(err)
				}
				if b[0]&0x0f == tc.opcode && tc.inHeader {
					break // one byte of the header read
				}
				v.r.UnreadByte()
				f, err := v.header()
				if err != nil {
					t.Fatal(err)
				}
				if f.opcode == tc.opcode && f.length >= 2 {
					if _, err := io.ReadFull(v.r, make([]byte, f.length/2)); err != nil {
						t.Fatal(err)
					}
					break
				}
				if _, err := io.ReadFull(v.r, make([]byte, f.length)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.reset {
				v.conn.SetLinger(0) // close sends RST
			}
			v.conn.Close()
			cut := step(e, id)

			waitUntil(t, "the server to drop the viewer", func() bool {
				return e.hub.Stats().Clients == 1 && e.hub.Topic(id).Clients() == 1
			})
			waitUntil(t, "the dropped viewer's goroutines to end", func() bool { return streamGoroutines() <= base })
			waitUntil(t, "training to go on", func() bool { return step(e, id) > cut+5 })
			steady.readPast(cut + 5)
		})
	}
	if s, _ := e.mgr.Get(id); s.Record().Status != sessions.StatusRunning {
		t.Errorf("session %s after the viewers left", s.Record().Status)
	}
}

// TestViewerThatNeverReads connects a viewer that completes the handshake
// and then reads nothing, with a tiny receive buffer, while a session
// trains. Once the socket buffers are full the server cannot send it
// anything; training must go on regardless, and the slow-client policy
// must drop it (1013, "too slow") while a well-behaved viewer keeps
// receiving every batch.
func TestViewerThatNeverReads(t *testing.T) {
	// A small MaxLag and a write timeout beyond any wait here: if the
	// hub drops the stuck viewer, it is because training kept publishing
	// durable messages that the viewer could not be sent (if publishing
	// waited for the viewer, none would be published, and the test would
	// time out).
	const maxLag = 16
	train, test := subsetData(t)
	e := startEnv(t, train, test, envOptions{hub: stream.Options{MaxLag: maxLag, WriteTimeout: 10 * time.Minute}, sendBuffer: 16 << 10})
	id := startLongTraining(t, e)
	steady := watchSteadily(t, e, id)
	steady.readPast(0)
	base := streamGoroutines()
	stuck := dialRaw(t, e, id, 1024)
	joined := step(e, id)
	waitUntil(t, "the stuck viewer to join", func() bool { return e.hub.Stats().Clients == 2 })

	waitUntil(t, "the stuck viewer to be dropped", func() bool { return e.hub.Stats().Dropped == 1 })
	dropped := step(e, id)
	// The steady viewer saw every batch while the other one was stuck,
	// and training goes on.
	steady.readPast(dropped)
	waitUntil(t, "training to go on", func() bool { return step(e, id) > dropped+5 })

	// The stuck viewer, reading at last, gets what the socket buffers
	// held (old news: it stopped well before the drop), then the close
	// frame, then the end of the connection.
	var last int64 // the last step it was sent
	var closing *websocket.CloseError
	for closing == nil {
		stuck.conn.SetReadDeadline(time.Now().Add(patience))
		f, payload, err := stuck.next()
		if err != nil {
			t.Fatalf("the stuck viewer's stream ended without a close frame: %v", err)
		}
		switch f.opcode {
		case opText:
			var m struct {
				Type string                `json:"type"`
				Data sessions.MetricsEvent `json:"data"`
			}
			if json.Unmarshal(payload, &m) == nil && m.Type == "metrics" && len(m.Data.Points) > 0 {
				last = m.Data.Points[len(m.Data.Points)-1].Step
			}
		case opClose:
			closing = &websocket.CloseError{Code: int(binary.BigEndian.Uint16(payload)), Text: string(payload[2:])}
		}
	}
	if closing.Code != websocket.CloseTryAgainLater || !strings.HasPrefix(closing.Text, "too slow") {
		t.Errorf("the stuck viewer got close %d %q, want 1013 too slow", closing.Code, closing.Text)
	}
	// It was dropped for lagging MaxLag durable messages behind, each
	// with at least one new batch: training went on that far while the
	// server could send it nothing.
	if dropped-last < maxLag {
		t.Errorf("the stuck viewer was sent step %d, the session was at %d when it was dropped", last, dropped)
	}
	t.Logf("joined at step %d, last sent step %d, dropped at step %d", joined, last, dropped)
	if _, err := stuck.r.ReadByte(); !errors.Is(err, io.EOF) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			t.Errorf("after the close frame the connection gave %v, want it closed", err)
		}
	}
	waitUntil(t, "the stuck viewer's goroutines to end", func() bool {
		return streamGoroutines() <= base && e.hub.Stats().Clients == 1
	})
	steady.readPast(step(e, id))
}

// TestShutdownWithViewers stops the server, as viz serve does on Ctrl-C,
// while viewers watch a training session and an idle one: each gets a
// clean close frame (1001, "server shutting down"), and once they have
// hung up no goroutine is left of the server, the hub, the sessions or
// the viewers.
func TestShutdownWithViewers(t *testing.T) {
	// The engine's worker pool is left out of the count: its helpers
	// start on first use and live as long as the process, like the
	// runtime's own workers, and how many start depends on the work and
	// the number of cores. So is the test's own HTTP client: it keeps
	// connections alive (two goroutines each), which are the test's, not
	// the server's. Nothing else may remain: no slack.
	const pool = "cnnviz/engine.poolStart"
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	base := countGoroutines(pool, true)
	e := startAPIEnv(t)
	training := startLongTraining(t, e)
	idle := e.create(t, `{"preset": "tiny"}`).ID
	viewers := []struct {
		session string
		since   uint64
	}{{training, 0}, {training, 3}, {idle, 0}}
	errs := make(chan error, len(viewers))
	var conns []*websocket.Conn
	for _, v := range viewers {
		c := e.dial(t, v.session, v.since)
		conns = append(conns, c.conn)
		c.next(false) // joined: history or state arrives
		go func() {
			for {
				if _, _, err := c.conn.ReadMessage(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	waitUntil(t, "every viewer to join", func() bool { return e.hub.Stats().Clients == len(viewers) })
	waitUntil(t, "training", func() bool { return step(e, training) > 0 })

	e.shutdown()
	for range viewers {
		select {
		case err := <-errs:
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
				t.Errorf("a viewer's stream ended with %v, want close 1001 \"server shutting down\"", err)
			}
		case <-time.After(patience):
			t.Fatal("a viewer got no close frame")
		}
	}
	for _, c := range conns {
		c.Close()
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(patience)
	for countGoroutines(pool, true) > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after shutdown, %d before the server started:\n%s",
				countGoroutines(pool, true), base, bytes.Join(goroutines(), []byte("\n\n")))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
