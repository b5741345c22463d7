package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// history fills topic with durable messages 2, 4, ..., 40 (gaps are
// allowed) and three images: filters 41, activations 42, then filters 43,
// which replaces 41.
func history(t *testing.T, top *Topic) {
	t.Helper()
	var ms []*Message
	for seq := uint64(2); seq <= 40; seq += 2 {
		ms = append(ms, metric(t, seq))
	}
	top.Preload(ms)
	top.PublishLatest("filters", image(t, KindFilters, 41, 100))
	top.PublishLatest("activations", image(t, KindActivations, 42, 100))
	top.PublishLatest("filters", image(t, KindFilters, 43, 100))
}

func TestReplayThenLatestThenLive(t *testing.T) {
	tests := []struct {
		since uint64
		first uint64 // first durable seq replayed; 0: none
	}{
		{since: 0, first: 2},   // the whole history
		{since: 12, first: 14}, // resume after a seq the client saw
		{since: 13, first: 14}, // or one it did not (a gap)
		{since: 40, first: 0},  // up to date
		{since: 99, first: 0},  // ahead of the log (an older server run)
	}
	s := newTestServer(t, Options{}, nil)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("since=%d", tt.since), func(t *testing.T) {
			id := t.Name()
			top := s.hub.Topic(id)
			history(t, top)
			conn := s.dialJoined(t, id, tt.since)

			if tt.first != 0 {
				for want := tt.first; want <= 40; want += 2 {
					if got := read(t, conn); got.Binary || got.Seq != want {
						t.Fatalf("replay: got %v, want metrics(seq %d)", got, want)
					}
				}
			}
			// The latest image of each key, in the order the keys first
			// appeared; filters 41 was replaced by 43.
			for _, want := range []received{{Binary: true, Kind: KindFilters, Seq: 43}, {Binary: true, Kind: KindActivations, Seq: 42}} {
				if got := read(t, conn); got.Binary != want.Binary || got.Kind != want.Kind || got.Seq != want.Seq {
					t.Fatalf("latest: got %v, want %v", got, want)
				}
			}
			// Live messages follow, in order.
			for seq := uint64(45); seq <= 60; seq += 3 {
				top.Publish(metric(t, seq))
			}
			for want := uint64(45); want <= 60; want += 3 {
				if got := read(t, conn); got.Binary || got.Seq != want {
					t.Fatalf("live: got %v, want metrics(seq %d)", got, want)
				}
			}
		})
	}
}

// TestLiveOrder has several clients receive a burst of durable messages
// mixed with images: every client gets every durable message, in order, and
// images in increasing order.
func TestLiveOrder(t *testing.T) {
	const clients, n = 4, 500
	s := newTestServer(t, Options{}, nil)
	top := s.hub.Topic("s1")
	type outcome struct {
		durable []uint64
		err     error
	}
	outcomes := make(chan outcome, clients)
	for range clients {
		conn := s.dialJoined(t, "s1", 0)
		go func() {
			var o outcome
			lastImage := uint64(0)
			for len(o.durable) < n {
				_ = conn.SetReadDeadline(time.Now().Add(patience))
				typ, data, err := conn.ReadMessage()
				if err != nil {
					o.err = err
					break
				}
				r, err := decode(typ, data)
				if err != nil {
					o.err = err
					break
				}
				if r.Binary {
					if r.Seq <= lastImage {
						o.err = fmt.Errorf("image %d after image %d", r.Seq, lastImage)
						break
					}
					lastImage = r.Seq
					continue
				}
				o.durable = append(o.durable, r.Seq)
			}
			outcomes <- o
		}()
	}
	seq := uint64(0)
	for i := range n {
		seq += uint64(1 + i%3) // gaps are allowed
		top.Publish(metric(t, seq))
		if i%10 == 0 {
			seq++
			top.PublishLatest("filters", image(t, KindFilters, seq, 2000))
		}
	}
	for range clients {
		o := <-outcomes
		if o.err != nil {
			t.Fatal(o.err)
		}
		for i := 1; i < len(o.durable); i++ {
			if o.durable[i] <= o.durable[i-1] {
				t.Fatalf("durable %d after %d", o.durable[i], o.durable[i-1])
			}
		}
		if last := o.durable[len(o.durable)-1]; last != top.LastSeq() {
			t.Fatalf("last durable %d, want %d", last, top.LastSeq())
		}
	}
}

// TestLatestWins publishes 100 large filter frames while a client is not
// reading: once the connection's buffers are full, newer frames replace
// unsent ones, so the client gets far fewer than 100, ending with the newest.
func TestLatestWins(t *testing.T) {
	const frames, size = 100, 256 << 10
	s := newTestServer(t, Options{}, nil)
	top := s.hub.Topic("s1")
	conn := s.dialJoined(t, "s1", 0)

	for seq := uint64(1); seq <= frames; seq++ {
		top.PublishLatest("filters", image(t, KindFilters, seq, size))
	}
	got, last := 0, uint64(0)
	for last != frames {
		r := read(t, conn)
		if !r.Binary || r.Seq <= last {
			t.Fatalf("got %v after image %d", r, last)
		}
		got, last = got+1, r.Seq
	}
	// 100 frames of 256 KiB are 25 MiB; loopback buffers hold a few MiB.
	if got > frames/2 {
		t.Errorf("received %d of %d frames, want far fewer", got, frames)
	}
	t.Logf("received %d of %d frames; %d replaced", got, frames, s.hub.Stats().Replaced)
	// Nothing older is left to come: the next message is a new durable one.
	top.Publish(metric(t, frames+1))
	if r := read(t, conn); r.Binary || r.Seq != frames+1 {
		t.Fatalf("got %v, want metrics(seq %d)", r, frames+1)
	}
}

// fastReader reads conn in a goroutine and reports the seq of every message
// on the returned channel, which is closed when the connection fails.
func fastReader(conn *websocket.Conn) <-chan uint64 {
	seqs := make(chan uint64, 1024)
	go func() {
		defer close(seqs)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(patience))
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			r, err := decode(typ, data)
			if err != nil {
				return
			}
			seqs <- r.Seq
		}
	}()
	return seqs
}

// publishPaced publishes a large durable frame with seq, waits until the
// fast client has received it (so only the slow client can fall behind), and
// returns how long Publish took.
func publishPaced(t *testing.T, top *Topic, fast <-chan uint64, seq uint64) time.Duration {
	t.Helper()
	m := image(t, KindActivations, seq, 128<<10)
	start := time.Now()
	top.Publish(m)
	took := time.Since(start)
	select {
	case got, ok := <-fast:
		if !ok || got != seq {
			t.Fatalf("fast client: got seq %d (open %v), want %d", got, ok, seq)
		}
	case <-time.After(patience):
		t.Fatalf("fast client did not receive seq %d", seq)
	}
	return took
}

// maxPublish is the longest a Publish may take in these tests. Publish takes
// a mutex and loops over a few clients: microseconds. A Publish that waited
// for the stuck client would take WriteTimeout or forever.
const maxPublish = 250 * time.Millisecond

func TestSlowClientDroppedForLag(t *testing.T) {
	const maxLag = 8
	// A long WriteTimeout, so that it is the lag that drops the client.
	s := newTestServer(t, Options{MaxLag: maxLag, WriteTimeout: time.Minute}, nil)
	top := s.hub.Topic("s1")
	slow := s.dialJoined(t, "s1", 0) // never reads until it is dropped
	fast := fastReader(s.dialJoined(t, "s1", 0))

	// The slow client's socket buffers fill (a few MiB), its writer blocks,
	// and from then on every publish adds one to its lag.
	var longest time.Duration
	seq := uint64(0)
	for s.hub.Stats().Dropped == 0 {
		if seq == 500 {
			t.Fatal("slow client not dropped after 500 frames of 128 KiB")
		}
		seq++
		longest = max(longest, publishPaced(t, top, fast, seq))
	}
	t.Logf("dropped after %d frames; longest Publish %v", seq, longest)
	if longest > maxPublish {
		t.Errorf("a Publish took %v: publishing waited for a client", longest)
	}
	// The fast client is unaffected.
	for range 20 {
		seq++
		publishPaced(t, top, fast, seq)
	}
	// The slow client, reading at last, gets what its buffers held, then
	// the close frame.
	expectClose(t, slow, websocket.CloseTryAgainLater, fmt.Sprintf("too slow: fell %d messages behind", maxLag+1))
	if err := s.result(t); !errors.Is(err, ErrTooSlow) {
		t.Errorf("Serve returned %v, want ErrTooSlow", err)
	}
	if st := s.hub.Stats(); st.Clients != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v, want 1 client, 1 dropped", st)
	}
}

func TestSlowClientDroppedForWriteTimeout(t *testing.T) {
	// A huge MaxLag, so that it is the write timeout that drops the client.
	s := newTestServer(t, Options{MaxLag: 1 << 20, WriteTimeout: 200 * time.Millisecond}, nil)
	top := s.hub.Topic("s1")
	slow := s.dialJoined(t, "s1", 0)
	fast := fastReader(s.dialJoined(t, "s1", 0))

	// 100 frames of 128 KiB (12.5 MiB) overflow the slow client's socket
	// buffers, so its writer blocks and times out.
	var longest time.Duration
	seq := uint64(0)
	for range 100 {
		seq++
		longest = max(longest, publishPaced(t, top, fast, seq))
	}
	waitFor(t, "the slow client to be dropped", func() bool { return s.hub.Stats().Dropped == 1 })
	if longest > maxPublish {
		t.Errorf("a Publish took %v: publishing waited for a client", longest)
	}
	for range 20 {
		seq++
		publishPaced(t, top, fast, seq)
	}
	err := s.result(t)
	if !errors.Is(err, ErrTooSlow) || !strings.Contains(err.Error(), "write timed out after 200ms") {
		t.Errorf("Serve returned %v, want ErrTooSlow after a write timeout", err)
	}
	// The connection broke mid-frame, so no close frame can follow: the
	// client sees the connection end (1006 abnormal closure).
	var ce *websocket.CloseError
	if err := readUntilError(t, slow); errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("slow client got %v, want the connection to break", err)
	}
}

func TestPrivateMessages(t *testing.T) {
	handle := func(c *Client, msgType int, data []byte) error {
		m, err := JSON("prediction", c.Topic().ID(), c.Topic().LastSeq(), map[string]string{"echo": string(data)})
		if err != nil {
			return err
		}
		c.SendPrivate(m)
		return nil
	}
	s := newTestServer(t, Options{}, handle)
	top := s.hub.Topic("s1")
	alice := s.dialJoined(t, "s1", 0)
	bob := s.dialJoined(t, "s1", 0)

	if err := alice.WriteMessage(websocket.TextMessage, []byte("seven")); err != nil {
		t.Fatal(err)
	}
	if r := read(t, alice); r.Type != "prediction" || string(r.Data) != `{"echo":"seven"}` {
		t.Fatalf("alice got %v %s, want her prediction", r, r.Data)
	}
	// Bob's next message is the next broadcast, not Alice's answer.
	top.Publish(metric(t, 1))
	for name, conn := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		if r := read(t, conn); r.Type != "metrics" || r.Seq != 1 {
			t.Fatalf("%s got %v, want metrics(seq 1)", name, r)
		}
	}
}

// TestPrivateQueueDropsOldest fills a client's private queue without a
// connection: the queue keeps the newest PrivateQueue messages.
func TestPrivateQueueDropsOldest(t *testing.T) {
	h := NewHub(Options{PrivateQueue: 4})
	defer h.Close()
	c := newClient(h, h.Topic("s1"), nil)
	for seq := uint64(1); seq <= 10; seq++ {
		c.SendPrivate(metric(t, seq))
	}
	var got []uint64
	for _, m := range c.private {
		got = append(got, m.Seq)
	}
	if fmt.Sprint(got) != "[7 8 9 10]" {
		t.Errorf("queue holds %v, want [7 8 9 10]", got)
	}
	if n := h.Stats().PrivateDropped; n != 6 {
		t.Errorf("PrivateDropped = %d, want 6", n)
	}
}

func TestHandlerErrors(t *testing.T) {
	handle := func(c *Client, msgType int, data []byte) error {
		switch string(data) {
		case "bad":
			// The caller answers an ordinary error itself; the
			// connection stays open.
			m, err := JSON("error", "s1", 0, "bad request")
			if err != nil {
				return err
			}
			c.SendPrivate(m)
			return errors.New("bad request")
		case "fatal":
			return fmt.Errorf("decode drawing: %w", Fatal(websocket.ClosePolicyViolation, "bad drawing"))
		}
		return nil
	}
	s := newTestServer(t, Options{}, handle)
	conn := s.dialJoined(t, "s1", 0)

	for range 2 {
		if err := conn.WriteMessage(websocket.TextMessage, []byte("bad")); err != nil {
			t.Fatal(err)
		}
		if r := read(t, conn); r.Type != "error" {
			t.Fatalf("got %v, want an error message", r)
		}
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("fatal")); err != nil {
		t.Fatal(err)
	}
	expectClose(t, conn, websocket.ClosePolicyViolation, "bad drawing")
	var fatal *FatalError
	if err := s.result(t); !errors.As(err, &fatal) || fatal.Code != websocket.ClosePolicyViolation {
		t.Errorf("Serve returned %v, want the handler's FatalError", err)
	}
}

func TestClientClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: cut to 61 runes (122 bytes)
	handle := func(c *Client, msgType int, data []byte) error {
		c.Close(4000, long)
		return nil
	}
	s := newTestServer(t, Options{}, handle)
	conn := s.dialJoined(t, "s1", 0)
	if err := conn.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	expectClose(t, conn, 4000, strings.Repeat("é", 61))
}

func TestReadLimit(t *testing.T) {
	s := newTestServer(t, Options{ReadLimit: 1024}, nil)
	conn := s.dialJoined(t, "s1", 0)
	// The server stops reading mid-message, so this write may fail; the
	// close frame must arrive all the same.
	_ = conn.WriteMessage(websocket.BinaryMessage, make([]byte, 64<<10))
	expectClose(t, conn, websocket.CloseMessageTooBig, "")
	if err := s.result(t); !errors.Is(err, websocket.ErrReadLimit) {
		t.Errorf("Serve returned %v, want ErrReadLimit", err)
	}
}

func TestRemove(t *testing.T) {
	s := newTestServer(t, Options{}, nil)
	a, b := s.hub.Topic("a"), s.hub.Topic("b")
	b1 := s.dialJoined(t, "b", 0)
	base := runtime.NumGoroutine()
	a1, a2 := s.dialJoined(t, "a", 0), s.dialJoined(t, "a", 0)
	a.Publish(metric(t, 1))
	for _, conn := range []*websocket.Conn{a1, a2} {
		if r := read(t, conn); r.Seq != 1 {
			t.Fatalf("got %v, want metrics(seq 1)", r)
		}
	}

	removed := make(chan struct{})
	go func() {
		s.hub.Remove("a")
		close(removed)
	}()
	// Remove waits for its clients to finish the closing handshake, which
	// they do as they read.
	expectClose(t, a1, websocket.CloseGoingAway, "session deleted")
	expectClose(t, a2, websocket.CloseGoingAway, "session deleted")
	select {
	case <-removed:
	case <-time.After(patience):
		t.Fatal("Remove did not return")
	}
	for range 2 {
		if err := s.result(t); !errors.Is(err, ErrRemoved) {
			t.Errorf("Serve returned %v, want ErrRemoved", err)
		}
	}
	// Only topic b's writer is left, and the goroutine count is back to
	// what it was before topic a's clients came.
	waitFor(t, "topic a's goroutines to end", func() bool {
		return goroutinesRunning("(*Client).writeLoop") == 1 && runtime.NumGoroutine() <= base
	})

	a.Publish(metric(t, 2)) // no-op
	if a.LastSeq() != 1 || a.Clients() != 0 {
		t.Errorf("removed topic: LastSeq %d, %d clients; want 1, 0", a.LastSeq(), a.Clients())
	}
	b.Publish(metric(t, 7))
	if r := read(t, b1); r.Seq != 7 {
		t.Fatalf("topic b: got %v, want metrics(seq 7)", r)
	}
	if st := s.hub.Stats(); st.Topics != 1 || st.Clients != 1 {
		t.Errorf("stats %+v, want 1 topic, 1 client", st)
	}
	// The id can be used again: a new, empty topic.
	if s.hub.Topic("a") == a || s.hub.Topic("a").LastSeq() != 0 {
		t.Error("Topic after Remove returned the old topic")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	s := newTestServer(t, Options{}, nil)
	base := runtime.NumGoroutine()
	var conns []*websocket.Conn
	for _, id := range []string{"a", "a", "b"} {
		conns = append(conns, s.dialJoined(t, id, 0))
	}
	s.hub.Topic("a").Publish(metric(t, 1))

	closed := make(chan struct{})
	go func() {
		s.hub.Close()
		close(closed)
	}()
	for _, conn := range conns {
		expectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	}
	select {
	case <-closed:
	case <-time.After(patience):
		t.Fatal("Close did not return")
	}
	// Close waited for every client: none is left, in the counts or as a
	// goroutine running hub code.
	if st := s.hub.Stats(); st.Clients != 0 || st.Topics != 0 {
		t.Errorf("stats after Close %+v, want no clients, no topics", st)
	}
	for range conns {
		if err := s.result(t); !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	}
	// Goroutines that returned from hub code may still be exiting.
	waitFor(t, "hub goroutines to end", func() bool {
		return goroutinesRunning("cnnviz/stream.(*Client)") == 0 && goroutinesRunning("cnnviz/stream.(*Hub)") == 0
	})
	for _, conn := range conns {
		conn.Close()
	}
	waitFor(t, "the goroutine count to return to its base", func() bool { return runtime.NumGoroutine() <= base })

	// A closed hub ignores publishing and turns new clients away.
	top := s.hub.Topic("a")
	top.Publish(metric(t, 5))
	if top.LastSeq() != 0 {
		t.Error("Publish on a closed hub was not a no-op")
	}
	late := s.dial(t, "a", 0)
	expectClose(t, late, websocket.CloseGoingAway, "server shutting down")
	if err := s.result(t); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve on a closed hub returned %v, want ErrClosed", err)
	}
	s.hub.Close() // idempotent
}

// TestCloseCutsOffUnresponsivePeers closes a hub whose client reads nothing,
// so it never answers the close frame: Close gives up on the handshake and
// still returns.
func TestCloseCutsOffUnresponsivePeers(t *testing.T) {
	s := newTestServer(t, Options{}, nil)
	s.dialJoined(t, "s1", 0)
	start := time.Now()
	s.hub.Close()
	if took := time.Since(start); took > 3*closeGrace {
		t.Errorf("Close took %v", took)
	}
	if err := s.result(t); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve returned %v, want ErrClosed", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	s := newTestServer(t, Options{}, nil)
	conn := s.dialJoined(t, "s1", 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.hub.Run(ctx) }()
	cancel()
	expectClose(t, conn, websocket.CloseGoingAway, "server shutting down")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
}

func TestServeContext(t *testing.T) {
	s := newTestServer(t, Options{}, nil)
	conn := s.dialJoined(t, "s1", 0)
	s.cancel()
	expectClose(t, conn, websocket.CloseGoingAway, "going away")
	if err := s.result(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve returned %v, want context.Canceled", err)
	}
}

func TestPingKeepsClientAlive(t *testing.T) {
	// A PongWait long enough that a slow machine answers every ping in
	// time, and pings often enough to span it twice quickly.
	s := newTestServer(t, Options{PingInterval: 20 * time.Millisecond, PongWait: 500 * time.Millisecond}, nil)
	top := s.hub.Topic("s1")
	conn := s.dialJoined(t, "s1", 0)
	var pings atomic.Int32
	pong := conn.PingHandler()
	conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return pong(data) // answer as gorilla does by default
	})
	got := fastReader(conn)
	// 50 pings answered span twice PongWait: without the pongs, the
	// server would have given the connection up.
	waitFor(t, "50 pings", func() bool { return pings.Load() >= 50 })
	top.Publish(metric(t, 1))
	if seq := <-got; seq != 1 {
		t.Fatalf("got seq %d, want 1", seq)
	}
}

func TestPongTimeout(t *testing.T) {
	s := newTestServer(t, Options{PingInterval: 20 * time.Millisecond, PongWait: 100 * time.Millisecond}, nil)
	s.dialJoined(t, "s1", 0) // never reads, so never answers a ping
	err := s.result(t)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Serve returned %v, want a read timeout", err)
	}
}

func TestPublishIgnoresStaleSeq(t *testing.T) {
	h := NewHub(Options{})
	defer h.Close()
	top := h.Topic("s1")
	for _, seq := range []uint64{0, 5, 5, 3, 6} {
		top.Publish(metric(t, seq))
	}
	top.Preload([]*Message{metric(t, 6), metric(t, 9)})
	if top.LastSeq() != 9 {
		t.Errorf("LastSeq = %d, want 9", top.LastSeq())
	}
	if st := h.Stats(); st.Published != 3 || st.Rejected != 4 {
		t.Errorf("published %d, rejected %d; want 3, 4", st.Published, st.Rejected)
	}
}

func TestPublishPanicsOnUnbuiltMessage(t *testing.T) {
	h := NewHub(Options{})
	defer h.Close()
	defer func() {
		if r, _ := recover().(string); !strings.HasPrefix(r, "stream: ") {
			t.Errorf("recovered %q, want a stream: panic", r)
		}
	}()
	h.Topic("s1").Publish(&Message{Seq: 1})
}

func TestOptions(t *testing.T) {
	got := Options{}.withDefaults()
	want := Options{MaxLag: 1024, WriteTimeout: 10 * time.Second, PingInterval: 30 * time.Second,
		PongWait: 60 * time.Second, ReadLimit: 256 << 10, PrivateQueue: 16}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("PongWait <= PingInterval did not panic")
		}
	}()
	NewHub(Options{PingInterval: time.Minute, PongWait: time.Minute})
}

func TestMessages(t *testing.T) {
	m, err := JSON("metrics", "s1", 7, map[string]float64{"loss": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"metrics","session":"s1","seq":7,"data":{"loss":0.5}}`; string(m.Data) != want || m.Binary || m.Seq != 7 {
		t.Errorf("JSON built %s (binary %v, seq %d), want %s", m.Data, m.Binary, m.Seq, want)
	}
	if _, err := JSON("bad", "s1", 1, func() {}); err == nil {
		t.Error("JSON encoded a func")
	}
	if _, err := NewText(1, []byte{0xff}); err == nil {
		t.Error("NewText accepted invalid UTF-8")
	}
	if m, err := NewBinary(3, []byte{0xff}); err != nil || !m.Binary || m.Seq != 3 {
		t.Errorf("NewBinary: %v, %v", m, err)
	}
}

func TestCloseFrameLimits(t *testing.T) {
	for code, want := range map[int]int{1000: 1000, 1013: 1013, 4999: 4999, 0: 1008, 1005: 1008, 1006: 1008, 5000: 1008} {
		if got := sendableCode(code); got != want {
			t.Errorf("sendableCode(%d) = %d, want %d", code, got, want)
		}
	}
	if got := truncateReason(strings.Repeat("a", 200)); len(got) != maxReason {
		t.Errorf("truncated to %d bytes, want %d", len(got), maxReason)
	}
}

// TestConcurrentUse runs publishers, joins, leaves and stats at once, for
// the race detector.
func TestConcurrentUse(t *testing.T) {
	// A huge MaxLag: the publisher below runs flat out, and dropping a
	// client is not what this test is about.
	s := newTestServer(t, Options{MaxLag: 1 << 30}, func(c *Client, _ int, data []byte) error {
		m, err := NewText(0, data)
		if err == nil {
			c.SendPrivate(m)
		}
		return err
	})
	top := s.hub.Topic("s1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Messages are built up front: t.Fatal must not run on this goroutine.
	metrics, filters := make([]*Message, 1000), image(t, KindFilters, 1, 500)
	for i := range metrics {
		metrics[i] = metric(t, uint64(i+1))
	}
	wg.Go(func() {
		for i := 0; ; i = (i + 1) % len(metrics) {
			select {
			case <-stop:
				return
			default:
			}
			top.Publish(metrics[i]) // ignored once the seqs come round again
			top.PublishLatest("filters", filters)
			_ = s.hub.Stats()
		}
	})
	for i := range 8 {
		conn := s.dialJoined(t, "s1", uint64(i))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"echo","seq":0}`)); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			read(t, conn)
		}
		conn.Close()
	}
	close(stop)
	wg.Wait()
}
