package stream

import (
	"fmt"
	"sort"
	"sync"

	"github.com/gorilla/websocket"
)

// Topic is the stream of one training session: a log of durable messages,
// the latest message of each latest-wins key, and the clients watching.
// Its methods are safe for concurrent use; none of them waits for a client.
type Topic struct {
	hub *Hub
	id  string

	// mu guards the fields below and the delivery state of every client
	// of the topic (see Client). It is held only for bookkeeping, never
	// across a network write, so publishing never waits for a client.
	mu sync.Mutex

	// log holds every durable message in Seq order. It is append-only, so
	// a client's cursor (an index into it) stays valid and a message's
	// slot is never rewritten.
	log     []*Message
	lastSeq uint64

	keys   map[string]int // latest-wins key -> index into latest and Client.slots
	latest []*Message     // the latest message of each key, in first-publish order

	clients map[*Client]struct{}

	closed   bool
	closeErr error // ErrClosed or ErrRemoved, for clients that arrive later

	// wg counts the topic's clients still running; Remove waits for it.
	wg sync.WaitGroup
}

func newTopic(h *Hub, id string) *Topic {
	return &Topic{hub: h, id: id, keys: make(map[string]int), clients: make(map[*Client]struct{})}
}

// ID returns the topic's id (the training session's id).
func (t *Topic) ID() string { return t.id }

// Publish appends a durable message to the log and wakes every client.
//
// m.Seq must exceed the topic's LastSeq (so sequence numbers start at 1,
// and since = 0 means the whole history); a message whose Seq does not is
// ignored (counted in Stats.Rejected), because a repeated or reordered seq
// would break resumption by sequence number, and a training goroutine should
// not crash the server over it. Publishing to a closed topic is a no-op.
//
// Publish also applies the lag half of the slow-consumer policy: a client
// that now has more than Options.MaxLag durable messages, published since it
// subscribed, waiting unsent is marked for dropping. Its writer sends the
// close frame, so Publish never waits for it.
func (t *Topic) Publish(m *Message) {
	mustBeBuilt(m)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if !t.appendLocked(m) {
		return
	}
	maxLag := t.hub.opts.MaxLag
	for c := range t.clients {
		if c.stopping {
			continue
		}
		// Messages before c.joined are the client's replay of history,
		// which may be long and is not lag.
		lag := len(t.log) - max(c.cursor, c.joined)
		if lag > maxLag {
			reason := fmt.Sprintf("too slow: fell %d messages behind", lag)
			c.stopLocked(websocket.CloseTryAgainLater, reason,
				fmt.Errorf("%w: fell %d messages behind", ErrTooSlow, lag))
			continue
		}
		c.wake()
	}
}

// Preload appends a stored history (after a restart, say) to the log, in
// order, skipping messages whose Seq does not increase, as Publish does. It
// is meant for a topic that has no client yet: it wakes clients that exist
// but does not check their lag, and the preloaded messages count as lag at
// the next Publish.
func (t *Topic) Preload(ms []*Message) {
	for _, m := range ms {
		mustBeBuilt(m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for _, m := range ms {
		t.appendLocked(m)
	}
	for c := range t.clients {
		c.wake()
	}
}

// appendLocked adds m to the log if its Seq increases; it reports whether
// it did.
func (t *Topic) appendLocked(m *Message) bool {
	if m.Seq <= t.lastSeq {
		t.hub.stats.rejected.Add(1)
		return false
	}
	t.log = append(t.log, m)
	t.lastSeq = m.Seq
	t.hub.stats.published.Add(1)
	return true
}

// PublishLatest makes m the latest message under key (such as "filters" or
// "activations"). It is not logged: the topic keeps only the latest message
// of each key, sent to clients that subscribe later, and each client holds
// at most one unsent message per key, the newest replacing an older one.
// Latest-wins messages never count toward a client's lag. Publishing to a
// closed topic is a no-op.
func (t *Topic) PublishLatest(key string, m *Message) {
	mustBeBuilt(m)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	i, ok := t.keys[key]
	if !ok {
		i = len(t.latest)
		t.keys[key] = i
		t.latest = append(t.latest, nil)
	}
	t.latest[i] = m
	for c := range t.clients {
		if c.stopping {
			continue
		}
		for len(c.slots) <= i {
			c.slots = append(c.slots, nil)
		}
		if c.slots[i] != nil {
			t.hub.stats.replaced.Add(1)
		}
		c.slots[i] = m
		c.wake()
	}
}

// LastSeq returns the Seq of the last durable message, or 0 if there is none.
func (t *Topic) LastSeq() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastSeq
}

// Clients returns the number of clients subscribed to the topic.
func (t *Topic) Clients() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// subscribe adds c, positioned to replay the durable messages after since
// and then the latest message of every key. It fails once the topic is
// closed.
func (t *Topic) subscribe(c *Client, since uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.closeErr
	}
	c.cursor = sort.Search(len(t.log), func(i int) bool { return t.log[i].Seq > since })
	c.joined = len(t.log)
	c.slots = append([]*Message(nil), t.latest...)
	t.clients[c] = struct{}{}
	t.wg.Add(1)
	return nil
}

// unsubscribe removes c once its goroutines have ended.
func (t *Topic) unsubscribe(c *Client) {
	t.mu.Lock()
	delete(t.clients, c)
	t.mu.Unlock()
	t.wg.Done()
}

// shut closes the topic: later publishes are no-ops, later subscriptions
// fail with err, and every client is told to close with code and reason.
func (t *Topic) shut(code int, reason string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed, t.closeErr = true, err
	for c := range t.clients {
		c.stopLocked(code, reason, err)
	}
}

// forceClose closes the connections of the clients still running, which
// ends any read or write they are blocked in.
func (t *Topic) forceClose() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.clients {
		_ = c.conn.Close()
	}
}

// mustBeBuilt panics on a message that did not come from NewText, NewBinary
// or JSON: a programmer error, caught where it is made rather than on some
// client's writer goroutine.
func mustBeBuilt(m *Message) {
	if m == nil || m.prepared == nil {
		panic("stream: message not built with NewText, NewBinary or JSON")
	}
}
