package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// patience bounds every wait in these tests. It is generous on purpose:
// waits end as soon as their condition holds, so it only matters when a
// test is failing, and a slow machine under -race must not flake.
const patience = 10 * time.Second

// testServer is an httptest server whose one route upgrades to a WebSocket
// and runs Hub.Serve with the query's topic and since.
type testServer struct {
	hub     *Hub
	srv     *httptest.Server
	cancel  context.CancelFunc // cancels the context every Serve call gets
	results chan error         // each Serve call's result, in the order they return
}

func newTestServer(t testing.TB, opts Options, handle Handler) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{hub: NewHub(opts), cancel: cancel, results: make(chan error, 1024)}
	var upgrader websocket.Upgrader
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the request
		}
		q := r.URL.Query()
		since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
		s.results <- s.hub.Serve(ctx, conn, q.Get("topic"), since, handle)
	}))
	t.Cleanup(func() {
		s.hub.Close()
		s.srv.Close()
		cancel()
	})
	return s
}

// dial connects a WebSocket client to topic, resuming after since.
func (s *testServer) dial(t testing.TB, topic string, since uint64) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/?" +
		url.Values{"topic": {topic}, "since": {strconv.FormatUint(since, 10)}}.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialJoined dials and waits until the hub has subscribed the client, so
// that what is published next is live for it, not history.
func (s *testServer) dialJoined(t testing.TB, topic string, since uint64) *websocket.Conn {
	t.Helper()
	top := s.hub.Topic(topic)
	before := s.hub.nextID.Load() // ids increase, so the new client's is larger
	conn := s.dial(t, topic, since)
	waitFor(t, "client to subscribe", func() bool {
		top.mu.Lock()
		defer top.mu.Unlock()
		for c := range top.clients {
			if c.id > before {
				return true
			}
		}
		return false
	})
	return conn
}

// result returns the next Serve result.
func (s *testServer) result(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.results:
		return err
	case <-time.After(patience):
		t.Fatal("Serve did not return")
		return nil
	}
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// metric builds a durable metrics message.
func metric(t testing.TB, seq uint64) *Message {
	t.Helper()
	m, err := JSON("metrics", "s1", seq, map[string]float64{"loss": 1 / float64(seq+1)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// image builds a binary image frame of about size bytes.
func image(t testing.TB, kind uint8, seq uint64, size int) *Message {
	t.Helper()
	w := min(size, 1024)
	h := (size + w - 1) / w
	f := &ImageFrame{Kind: kind, Seq: seq, Step: seq, Session: "s1", Groups: []ImageGroup{
		{Name: "conv1", H: h, W: w, C: 1, Lo: 0, Hi: 1, Pixels: make([]uint8, h*w)},
	}}
	m, err := f.Message()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// received is what a test client makes of a message.
type received struct {
	Binary bool
	Kind   uint8  // image frame kind, for binary messages
	Type   string // envelope type, for text messages
	Seq    uint64
	Data   json.RawMessage // envelope data, for text messages
}

func (r received) String() string {
	if r.Binary {
		return fmt.Sprintf("image(kind %d, seq %d)", r.Kind, r.Seq)
	}
	return fmt.Sprintf("%s(seq %d)", r.Type, r.Seq)
}

func decode(msgType int, data []byte) (received, error) {
	if msgType == websocket.BinaryMessage {
		f, err := ParseImageFrame(data)
		if err != nil {
			return received{}, err
		}
		return received{Binary: true, Kind: f.Kind, Seq: f.Seq}, nil
	}
	var env struct {
		Type string          `json:"type"`
		Seq  uint64          `json:"seq"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return received{}, fmt.Errorf("decode %q: %w", data, err)
	}
	return received{Type: env.Type, Seq: env.Seq, Data: env.Data}, nil
}

// read reads and decodes the next message, failing the test on error.
func read(t testing.TB, conn *websocket.Conn) received {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(patience))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	r, err := decode(typ, data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readUntilError reads, discarding messages, until the connection fails,
// and returns that error.
func readUntilError(t testing.TB, conn *websocket.Conn) error {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(patience))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", patience)
			}
			return err
		}
	}
}

// expectClose reads until the server's close frame and checks its code and
// reason. Like a well-behaved client, it then closes the connection (gorilla
// has already answered the close frame).
func expectClose(t testing.TB, conn *websocket.Conn, code int, reason string) {
	t.Helper()
	err := readUntilError(t, conn)
	conn.Close()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a close frame %d %q", err, code, reason)
	}
	if ce.Code != code || ce.Text != reason {
		t.Fatalf("got close %d %q, want %d %q", ce.Code, ce.Text, code, reason)
	}
}

// goroutinesRunning counts the goroutines whose stack mentions fn.
func goroutinesRunning(fn string) int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			count++
		}
	}
	return count
}
