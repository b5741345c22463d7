package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Client is one WebSocket connection subscribed to a topic. Serve creates
// it and runs its two goroutines: a reader (Serve's own goroutine), which
// passes incoming messages to the Handler, and a writer, the only goroutine
// that writes data frames to the connection.
type Client struct {
	id    uint64
	hub   *Hub
	topic *Topic
	conn  *websocket.Conn

	// notify wakes the writer. Its capacity of 1 means a wake-up is never
	// lost (the writer re-checks everything when it wakes) and sending
	// never blocks: a full channel already holds the news.
	notify chan struct{}

	readerDone chan struct{} // closed when the reader has returned
	readErr    error         // the reader's last error, read after readerDone

	// The delivery state below is guarded by topic.mu, so a publish
	// updates every client under one short lock and the writer takes the
	// next message under the same lock, then writes it outside.

	cursor   int        // index in topic.log of the next durable message to write
	joined   int        // len(topic.log) at subscription: lag counts from here
	slots    []*Message // unsent latest-wins message per key index, or nil
	nextSlot int        // where the writer looks first, so no key starves another
	private  []*Message // unsent private messages, oldest first

	stopping    bool   // set once; the writer then closes the connection
	closeCode   int    // close frame to send; 0: none (the peer already closed, or the connection broke)
	closeReason string // the close frame's reason
	cause       error  // what Serve returns
}

func newClient(h *Hub, t *Topic, conn *websocket.Conn) *Client {
	return &Client{
		id:         h.nextID.Add(1),
		hub:        h,
		topic:      t,
		conn:       conn,
		notify:     make(chan struct{}, 1),
		readerDone: make(chan struct{}),
	}
}

// ID returns the client's id, unique within its hub, for logs and rate
// limiting.
func (c *Client) ID() uint64 { return c.id }

// Topic returns the topic the client watches.
func (c *Client) Topic() *Topic { return c.topic }

// SendPrivate queues m for this client alone (an answer to its request, say).
// Private messages go out before the topic's messages and in the order they
// were queued. The queue holds Options.PrivateQueue messages; when it is
// full the oldest is dropped (counted in Stats.PrivateDropped). The hub does
// not look at m.Seq. After the client has begun closing it is a no-op.
func (c *Client) SendPrivate(m *Message) {
	mustBeBuilt(m)
	t := c.topic
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.stopping {
		return
	}
	if len(c.private) >= c.hub.opts.PrivateQueue {
		c.private = append(c.private[:0], c.private[1:]...)
		c.hub.stats.privateDropped.Add(1)
	}
	c.private = append(c.private, m)
	c.wake()
}

// Close ends the client's connection with a close frame carrying code and
// reason (cut to 123 bytes); Serve then returns a *FatalError. A code that
// cannot be sent in a close frame is replaced by 1008 (policy violation).
// Close does not wait for the connection to close.
func (c *Client) Close(code int, reason string) {
	c.stop(code, reason, &FatalError{Code: code, Reason: reason})
}

// FatalError is an error that ends a client's connection with a close frame.
// A Handler returns one (build it with Fatal, possibly wrapped) to close the
// connection rather than keep it open.
type FatalError struct {
	Code   int    // close code, such as websocket.ClosePolicyViolation (1008)
	Reason string // sent to the peer in the close frame, cut to 123 bytes
}

// Fatal returns a *FatalError with code and reason.
func Fatal(code int, reason string) error {
	return &FatalError{Code: code, Reason: reason}
}

// Error describes the close frame the error asks for.
func (e *FatalError) Error() string {
	return fmt.Sprintf("stream: connection closed with %d: %s", e.Code, e.Reason)
}

// wake tells the writer there is something to do, without ever blocking.
func (c *Client) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// stop marks the client for closing: the first call wins, later ones are
// ignored. code 0 means no close frame is to be sent.
func (c *Client) stop(code int, reason string, cause error) {
	c.topic.mu.Lock()
	defer c.topic.mu.Unlock()
	c.stopLocked(code, reason, cause)
}

func (c *Client) stopLocked(code int, reason string, cause error) {
	if c.stopping {
		return
	}
	c.stopping = true
	if code != 0 {
		code, reason = sendableCode(code), truncateReason(reason)
	}
	c.closeCode, c.closeReason, c.cause = code, reason, cause
	c.slots, c.private = nil, nil // nothing more will be sent
	if errors.Is(cause, ErrTooSlow) {
		c.hub.stats.dropped.Add(1)
	}
	c.wake()
}

func (c *Client) isStopping() bool {
	c.topic.mu.Lock()
	defer c.topic.mu.Unlock()
	return c.stopping
}

// result returns what Serve returns: why the client stopped.
func (c *Client) result() error {
	c.topic.mu.Lock()
	defer c.topic.mu.Unlock()
	return c.cause
}

// next returns the next message to write, or stopping. advance says the
// previous message written was the durable one at the cursor: the cursor
// moves only once a message is written, so a writer stuck in a write still
// has that message counted as lag.
//
// Order: private answers first (they are few, bounded, and someone is
// waiting for them), then durable messages (history, then live), then the
// latest-wins slots, taken in turn.
func (c *Client) next(advance bool) (m *Message, durable, stopping bool) {
	t := c.topic
	t.mu.Lock()
	defer t.mu.Unlock()
	if advance {
		c.cursor++
	}
	if c.stopping {
		return nil, false, true
	}
	if len(c.private) > 0 {
		m = c.private[0]
		c.private[0] = nil
		c.private = c.private[1:]
		return m, false, false
	}
	if c.cursor < len(t.log) {
		return t.log[c.cursor], true, false
	}
	for i := range c.slots {
		j := (c.nextSlot + i) % len(c.slots)
		if m = c.slots[j]; m != nil {
			c.slots[j] = nil
			c.nextSlot = j + 1
			return m, false, false
		}
	}
	return nil, false, false
}

// writeLoop is the client's writer: it sends what next returns until the
// client stops, pings the peer every PingInterval, and then closes the
// connection. It is the only goroutine that writes data frames, as gorilla
// allows one concurrent writer.
func (c *Client) writeLoop(ctx context.Context) {
	ping := time.NewTicker(c.hub.opts.PingInterval)
	defer ping.Stop()
	advance := false
	for {
		m, durable, stopping := c.next(advance)
		advance = false
		if stopping {
			break
		}
		if m == nil {
			select {
			case <-c.notify:
			case <-ping.C:
				c.ping()
			case <-ctx.Done():
				c.stop(websocket.CloseGoingAway, "going away", ctx.Err())
			}
			continue
		}
		// A client that always has something to receive must be pinged
		// too, or its read deadline would run out.
		select {
		case <-ping.C:
			if !c.ping() {
				continue
			}
		case <-ctx.Done():
			c.stop(websocket.CloseGoingAway, "going away", ctx.Err())
			continue
		default:
		}
		if err := c.write(m); err != nil {
			c.writeFailed(err)
			continue
		}
		advance = durable
	}
	c.closeHandshake()
}

func (c *Client) write(m *Message) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.hub.opts.WriteTimeout)); err != nil {
		return err
	}
	if err := c.conn.WritePreparedMessage(m.prepared); err != nil {
		return err
	}
	c.hub.stats.sent.Add(1)
	return nil
}

// ping sends a ping and reports whether it was written.
func (c *Client) ping() bool {
	err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.hub.opts.WriteTimeout))
	if err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// writeFailed stops the client after a failed write. A timeout is the write
// half of the slow-consumer policy.
func (c *Client) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		d := c.hub.opts.WriteTimeout
		c.stop(websocket.CloseTryAgainLater, fmt.Sprintf("too slow: write timed out after %v", d),
			fmt.Errorf("%w: write timed out after %v: %w", ErrTooSlow, d, err))
		return
	}
	c.stop(0, "", fmt.Errorf("stream: write: %w", err))
}

// closeHandshake ends the connection once the client has stopped.
//
// It sends the close frame, if any, and waits (up to closeGrace) for the
// reader to receive the peer's reply, so that the server closes the TCP
// connection after the closing handshake, as RFC 6455 asks. After a write
// timeout the close frame cannot be sent: the connection broke mid-frame,
// gorilla refuses further writes, and the peer sees 1006 (abnormal closure).
func (c *Client) closeHandshake() {
	c.topic.mu.Lock()
	code, reason := c.closeCode, c.closeReason
	c.topic.mu.Unlock()

	if code != 0 {
		msg := websocket.FormatCloseMessage(code, reason)
		if c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace)) == nil {
			timer := time.NewTimer(closeGrace)
			select {
			case <-c.readerDone:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
	select {
	case <-c.readerDone:
		if unreadInput(c.readErr) {
			c.drain()
		}
	default:
	}
	_ = c.conn.Close()
}

// unreadInput reports whether the reader stopped in the middle of the
// peer's input: after an oversized message gorilla sends 1009 and returns
// without reading the payload. Closing a socket with unread input makes the
// kernel send a reset, which can destroy the close frame before the peer
// reads it.
func unreadInput(err error) bool {
	var ce *websocket.CloseError
	var ne net.Error
	return err != nil && !errors.As(err, &ce) && !errors.As(err, &ne) &&
		!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF)
}

// drain discards the peer's input until it closes the connection (after
// reading our close frame) or closeGrace passes. Only call it after the
// reader has returned.
func (c *Client) drain() {
	nc := c.conn.NetConn()
	if nc.SetReadDeadline(time.Now().Add(closeGrace)) == nil {
		_, _ = io.Copy(io.Discard, nc)
	}
}

// readLoop is the client's reader: it passes each message to handle until a
// read fails, which happens when the peer closes, the connection breaks, no
// message or pong arrives within PongWait, a message exceeds ReadLimit, or
// the writer closes the connection. Reading on after the client has begun
// closing is how the peer's close reply is received.
func (c *Client) readLoop(handle Handler) {
	defer close(c.readerDone)
	opts := c.hub.opts
	c.conn.SetReadLimit(opts.ReadLimit)
	alive := func() { _ = c.conn.SetReadDeadline(time.Now().Add(opts.PongWait)) }
	alive()
	c.conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readErr = err
			c.stop(0, "", readError(err))
			return
		}
		alive() // any message shows the peer is there
		if handle == nil || c.isStopping() {
			continue
		}
		if err := handle(c, typ, data); err != nil {
			var fatal *FatalError
			if errors.As(err, &fatal) {
				c.stop(fatal.Code, fatal.Reason, err)
			}
		}
	}
}

// readError turns the reader's final error into what Serve returns: nil
// for a normal close by the peer.
func readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
			return nil
		}
		return fmt.Errorf("stream: peer closed: %w", err)
	}
	return fmt.Errorf("stream: read: %w", err)
}

// sendableCode returns code if a close frame may carry it (RFC 6455 section
// 7.4), else 1008 (policy violation).
func sendableCode(code int) int {
	switch {
	case code == websocket.CloseNoStatusReceived, code == websocket.CloseAbnormalClosure,
		code == websocket.CloseTLSHandshake, code == 1004:
		return websocket.ClosePolicyViolation
	case code >= 1000 && code <= 4999:
		return code
	}
	return websocket.ClosePolicyViolation
}

// maxReason is the longest close reason: a control frame carries at most
// 125 bytes, two of which hold the code.
const maxReason = 123

// truncateReason cuts reason to maxReason bytes without splitting a rune.
func truncateReason(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
