package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Options tunes a Hub. The zero value of each field takes its default.
type Options struct {
	// MaxLag is how many durable messages, published after a client
	// subscribed, may wait unsent for it before it is dropped as too slow.
	// Default 1024.
	MaxLag int
	// WriteTimeout bounds every write to a client; a client whose write
	// takes longer is dropped as too slow. Default 10s.
	WriteTimeout time.Duration
	// PingInterval is how often the hub pings an idle client. Default 30s.
	PingInterval time.Duration
	// PongWait is how long the hub waits for any message (a pong
	// included) from a client before it gives the connection up. It must
	// exceed PingInterval: each ping has to be answered before the read
	// deadline it is meant to extend runs out, or a healthy but quiet
	// client would be dropped. Default 60s.
	PongWait time.Duration
	// ReadLimit is the largest message a client may send, in bytes; a
	// larger one closes the connection with 1009 (message too big).
	// Default 256 KiB.
	ReadLimit int64
	// PrivateQueue is how many private messages may wait for a client;
	// when it is full the oldest is dropped. Default 16.
	PrivateQueue int
}

// Default values of Options.
const (
	DefaultMaxLag       = 1024
	DefaultWriteTimeout = 10 * time.Second
	DefaultPingInterval = 30 * time.Second
	DefaultPongWait     = 60 * time.Second
	DefaultReadLimit    = 256 << 10
	DefaultPrivateQueue = 16
)

// closeGrace bounds each step of closing a connection: writing the close
// frame, waiting for the peer's close reply, draining unread input. Hub.Close
// and Hub.Remove force-close whatever connection is still open after it.
const closeGrace = time.Second

// withDefaults fills zero fields and panics on settings that cannot work,
// which are programmer errors.
func (o Options) withDefaults() Options {
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PongWait <= 0 {
		o.PongWait = DefaultPongWait
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.PrivateQueue <= 0 {
		o.PrivateQueue = DefaultPrivateQueue
	}
	if o.PongWait <= o.PingInterval {
		panic(fmt.Sprintf("stream: PongWait (%v) must exceed PingInterval (%v)", o.PongWait, o.PingInterval))
	}
	return o
}

// Errors that Serve returns; match them with errors.Is.
var (
	// ErrClosed: the hub was closed (the server is shutting down).
	ErrClosed = errors.New("stream: hub closed")
	// ErrRemoved: the client's topic was removed (the session was deleted).
	ErrRemoved = errors.New("stream: topic removed")
	// ErrTooSlow: the client was dropped by the slow-consumer policy.
	ErrTooSlow = errors.New("stream: client too slow")
)

// Close reasons sent to clients when the server ends their connection.
const (
	reasonShutdown = "server shutting down"
	reasonRemoved  = "session deleted"
)

// Hub fans messages out to WebSocket clients, one Topic per training session.
// All its methods are safe for concurrent use.
type Hub struct {
	opts Options

	mu     sync.Mutex
	topics map[string]*Topic
	closed bool
	done   chan struct{} // closed by Close, ends Run

	// wg counts running Serve calls; Close waits for it.
	wg sync.WaitGroup

	nextID  atomic.Uint64
	clients atomic.Int64
	stats   counters
}

// counters are the hub's cumulative statistics, updated without locks.
type counters struct {
	published, rejected, sent, replaced, privateDropped, dropped atomic.Uint64
}

// Stats is a snapshot of a hub's state and cumulative counters.
type Stats struct {
	Topics  int // topics that exist now
	Clients int // clients connected now

	Published      uint64 // durable messages accepted (Publish and Preload)
	Rejected       uint64 // durable messages ignored because their Seq did not increase
	Sent           uint64 // messages written to clients, of every class
	Replaced       uint64 // latest-wins messages replaced by a newer one before they were sent
	PrivateDropped uint64 // private messages dropped because a client's queue was full
	Dropped        uint64 // clients dropped by the slow-consumer policy
}

// NewHub returns a hub with opts (zero fields take their defaults). It
// panics if PongWait does not exceed PingInterval.
func NewHub(opts Options) *Hub {
	return &Hub{
		opts:   opts.withDefaults(),
		topics: make(map[string]*Topic),
		done:   make(chan struct{}),
	}
}

// Run blocks until ctx is done or the hub is closed, then closes the hub.
// It lets the hub take part in a server's errgroup; it always returns nil.
func (h *Hub) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-h.done:
	}
	h.Close()
	return nil
}

// Close sends every client a close frame (1001 going away, "server shutting
// down"), closes the connections and waits until every Serve call has
// returned; a peer that does not finish the closing handshake within about a
// second is cut off. Publishing afterwards is a no-op. Close is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.wg.Wait()
		return
	}
	h.closed = true
	close(h.done)
	topics := make([]*Topic, 0, len(h.topics))
	for _, t := range h.topics {
		topics = append(topics, t)
	}
	clear(h.topics)
	h.mu.Unlock()

	for _, t := range topics {
		t.shut(websocket.CloseGoingAway, reasonShutdown, ErrClosed)
	}
	waitOrForce(&h.wg, func() {
		for _, t := range topics {
			t.forceClose()
		}
	})
}

// Topic returns the topic with the given id, creating it if needed. On a
// closed hub it returns a closed topic, on which publishing is a no-op.
func (h *Hub) Topic(id string) *Topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		t := newTopic(h, id)
		t.closed, t.closeErr = true, ErrClosed
		return t
	}
	return h.topicLocked(id)
}

func (h *Hub) topicLocked(id string) *Topic {
	t, ok := h.topics[id]
	if !ok {
		t = newTopic(h, id)
		h.topics[id] = t
	}
	return t
}

// Remove deletes a topic: its clients get a close frame (1001 going away,
// "session deleted"), Remove waits until their connections are closed, and
// publishing to the removed *Topic becomes a no-op. A later Topic(id) call
// creates a new, empty topic.
func (h *Hub) Remove(id string) {
	h.mu.Lock()
	t, ok := h.topics[id]
	delete(h.topics, id)
	h.mu.Unlock()
	if !ok {
		return
	}
	t.shut(websocket.CloseGoingAway, reasonRemoved, ErrRemoved)
	waitOrForce(&t.wg, t.forceClose)
}

// Stats returns the hub's current counts and cumulative counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	topics := len(h.topics)
	h.mu.Unlock()
	return Stats{
		Topics:         topics,
		Clients:        int(h.clients.Load()),
		Published:      h.stats.published.Load(),
		Rejected:       h.stats.rejected.Load(),
		Sent:           h.stats.sent.Load(),
		Replaced:       h.stats.replaced.Load(),
		PrivateDropped: h.stats.privateDropped.Load(),
		Dropped:        h.stats.dropped.Load(),
	}
}

// Handler receives each message a client sends: msgType is
// websocket.TextMessage or websocket.BinaryMessage and data is the payload,
// owned by the handler. It runs on the client's reader goroutine, so the
// client's next message waits until it returns; it should return promptly.
//
// A handler answers on the client's own connection with c.SendPrivate. It
// deals with bad requests itself (by answering them with an error message,
// say): an ordinary error it returns keeps the connection open and is
// otherwise ignored. An error marked fatal with Fatal (any error for which
// errors.As finds a *FatalError) closes the connection with the error's code
// and reason.
type Handler func(c *Client, msgType int, data []byte) error

// Serve runs a client on conn, an upgraded connection, subscribed to the
// topic with the given id, until the peer disconnects, the client is dropped
// or closed, ctx is done, or the hub or topic is closed. It blocks: call it
// from the HTTP handler that upgraded conn. Serve owns conn and closes it
// before it returns. It creates the topic if it does not exist, so check
// that the session exists before calling it.
//
// The client first receives every durable message with Seq > since, in order
// (since = 0: the whole history), then the latest message of each
// latest-wins key, then live messages. handle, which may be nil, receives
// the client's messages (see Handler).
//
// Serve returns nil when the peer closed the connection normally (1000, 1001
// or no status), ErrClosed or ErrRemoved when the hub or the topic closed,
// an error wrapping ErrTooSlow when the slow-consumer policy dropped the
// client, an error for which errors.As finds a *FatalError when the
// handler or Client.Close ended it, ctx's error when ctx ended it, and
// otherwise the read or write error.
func (h *Hub) Serve(ctx context.Context, conn *websocket.Conn, topic string, since uint64, handle Handler) error {
	c, err := h.join(conn, topic, since)
	if err != nil {
		reason := reasonShutdown
		if errors.Is(err, ErrRemoved) {
			reason = reasonRemoved
		}
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, reason)
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
		_ = conn.Close()
		return err
	}
	defer h.leave(c)

	// The writer gets its own goroutine; this one, the caller's, reads.
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ctx)
	}()
	c.readLoop(handle)
	<-writerDone
	return c.result()
}

// join subscribes a new client for conn to a topic. It registers the client
// with the hub's and the topic's wait groups under their locks, after
// checking that neither is closed, so Close and Remove never miss a client.
func (h *Hub) join(conn *websocket.Conn, id string, since uint64) (*Client, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	t := h.topicLocked(id)
	h.wg.Add(1)
	h.mu.Unlock()

	c := newClient(h, t, conn)
	if err := t.subscribe(c, since); err != nil {
		h.wg.Done()
		return nil, err
	}
	h.clients.Add(1)
	return c, nil
}

// leave undoes join once the client's goroutines have ended.
func (h *Hub) leave(c *Client) {
	c.topic.unsubscribe(c)
	h.clients.Add(-1)
	h.wg.Done()
}

// waitOrForce waits for wg; if that takes longer than closeGrace it calls
// force (which closes the remaining connections, ending their reads and
// writes) and waits again.
func waitOrForce(wg *sync.WaitGroup, force func()) {
	done := make(chan struct{})
	go func() { // ends when wg does, which the force below guarantees
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	force()
	<-done
}
