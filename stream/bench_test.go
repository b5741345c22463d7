package stream

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// progress counts what each benchmark client has received, so that the
// publisher can wait for the slowest client instead of filling the log
// faster than loopback drains it.
type progress struct {
	mu      sync.Mutex
	cond    *sync.Cond
	durable []uint64 // durable (text) messages received, per client
	total   []uint64 // messages of every class received, per client
	bytes   atomic.Uint64
	images  atomic.Uint64
}

func newProgress(clients int) *progress {
	p := &progress{durable: make([]uint64, clients), total: make([]uint64, clients)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *progress) received(client, size int, durable bool) {
	p.bytes.Add(uint64(size))
	if !durable {
		p.images.Add(1)
	}
	p.mu.Lock()
	p.total[client]++
	if durable {
		p.durable[client]++
	}
	p.mu.Unlock()
	p.cond.Signal() // only the publisher waits
}

// wait blocks until every client's count in counts (p.durable or p.total)
// reaches target.
func (p *progress) wait(counts []uint64, target uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for slices.Min(counts) < target {
		p.cond.Wait()
	}
}

// BenchmarkFanOut publishes, per iteration, a metrics message (durable) and
// a 40 KB activation frame (latest-wins) to 50 clients connected over
// loopback, each reading in its own goroutine. msgs/s counts frames written
// to sockets, MB/s the bytes the clients received; images/client/op is the
// share of image frames that reached a client rather than being replaced by
// a newer one.
//
//   - lockstep: the publisher waits until every client has both messages
//     before the next iteration, so every frame is delivered: the time to
//     fan one snapshot out to 50 browsers.
//   - pipelined: the publisher runs up to 32 iterations ahead of the slowest
//     client: the hub's throughput. Durable messages go first, so most
//     images are replaced by newer ones, as designed.
func BenchmarkFanOut(b *testing.B) {
	b.Run("lockstep", func(b *testing.B) { benchmarkFanOut(b, 0) })
	b.Run("pipelined", func(b *testing.B) { benchmarkFanOut(b, 32) })
}

func benchmarkFanOut(b *testing.B, window uint64) {
	const clients = 50
	s := newTestServer(b, Options{MaxLag: 1 << 30}, nil)
	top := s.hub.Topic("s1")
	p := newProgress(clients)
	for i := range clients {
		conn := s.dialJoined(b, "s1", 0)
		go func() {
			for {
				typ, data, err := conn.ReadMessage()
				if err != nil {
					return // the hub closed at the end of the benchmark
				}
				p.received(i, len(data), typ == websocket.TextMessage)
			}
		}()
	}
	// 25x25x64 bytes: the size of a conv layer's activations.
	frame := &ImageFrame{Kind: KindActivations, Session: "s1", Groups: []ImageGroup{
		{Name: "conv1", H: 25, W: 25, C: 64, Lo: -1, Hi: 1, Pixels: make([]uint8, 25*25*64)},
	}}

	b.ReportAllocs()
	sent0 := s.hub.Stats().Sent
	start := time.Now()
	seq := uint64(0)
	for b.Loop() {
		seq++
		m, err := JSON("metrics", "s1", seq, map[string]float64{"loss": 0.25, "accuracy": 0.9})
		if err != nil {
			b.Fatal(err)
		}
		top.Publish(m)
		frame.Seq, frame.Step = seq, seq
		img, err := frame.Message()
		if err != nil {
			b.Fatal(err)
		}
		top.PublishLatest("activations", img)
		switch {
		case window == 0:
			p.wait(p.total, 2*seq)
		case seq > window:
			p.wait(p.durable, seq-window)
		}
	}
	p.wait(p.durable, seq)
	elapsed := time.Since(start).Seconds()
	if s.hub.Stats().Dropped != 0 {
		b.Fatal("a client was dropped")
	}
	b.ReportMetric(float64(s.hub.Stats().Sent-sent0)/elapsed, "msgs/s")
	b.ReportMetric(float64(p.bytes.Load())/1e6/elapsed, "MB/s")
	b.ReportMetric(float64(p.images.Load())/clients/float64(seq), "images/client/op")
}

// BenchmarkPublishNoClients measures the publisher's side alone: what a
// training goroutine pays per publish when nobody watches.
func BenchmarkPublishNoClients(b *testing.B) {
	b.Run("durable", func(b *testing.B) {
		// A prebuilt message, copied with a new Seq: Publish alone.
		h := NewHub(Options{})
		defer h.Close()
		top := h.Topic("s1")
		tmpl := metric(b, 1)
		b.ReportAllocs()
		seq := uint64(0)
		for b.Loop() {
			seq++
			if seq%(1<<16) == 0 {
				// Start a fresh topic now and then, so the log does
				// not grow with b.N.
				h.Remove("s1")
				top = h.Topic("s1")
			}
			m := *tmpl
			m.Seq = seq
			top.Publish(&m)
		}
	})
	b.Run("metrics", func(b *testing.B) {
		// JSON encoding and preparing the frame, then Publish: the
		// whole cost of publishing a metrics message.
		h := NewHub(Options{})
		defer h.Close()
		top := h.Topic("s1")
		b.ReportAllocs()
		seq := uint64(0)
		for b.Loop() {
			seq++
			if seq%(1<<16) == 0 {
				h.Remove("s1")
				top = h.Topic("s1")
			}
			m, err := JSON("metrics", "s1", seq, map[string]float64{"loss": 0.25, "accuracy": 0.9})
			if err != nil {
				b.Fatal(err)
			}
			top.Publish(m)
		}
	})
	b.Run("latest", func(b *testing.B) {
		h := NewHub(Options{})
		defer h.Close()
		top := h.Topic("s1")
		m := image(b, KindFilters, 1, 40_000)
		b.ReportAllocs()
		for b.Loop() {
			top.PublishLatest("filters", m)
		}
	})
}
