package web

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// defaultPredictRate limits predictions per client. Drawing sends one
// every ~80 ms while the pen moves (debounced in the browser), so 20 a
// second with a burst of 20 never limits a person, and keeps one client
// from taking a core that training and 200 classmates need.
const defaultPredictRate = 20

// clientLimiter keeps a token bucket per client key (an IP address for
// HTTP; each WebSocket has a bucket of its own), forgetting clients idle for
// a minute so that the map stays small.
type clientLimiter struct {
	rate    int // per second, and the burst
	mu      sync.Mutex
	clients map[string]*limiterEntry
	pruned  time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClientLimiter(perSecond int) *clientLimiter {
	return &clientLimiter{rate: perSecond, clients: map[string]*limiterEntry{}, pruned: time.Now()}
}

// allow reports whether the client may make one more request now.
func (l *clientLimiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) > time.Minute {
		for k, e := range l.clients {
			if now.Sub(e.seen) > time.Minute {
				delete(l.clients, k)
			}
		}
		l.pruned = now
	}
	e, ok := l.clients[key]
	if !ok {
		e = &limiterEntry{lim: rate.NewLimiter(rate.Limit(l.rate), l.rate)}
		l.clients[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// clientIP is the remote address without its port. The server is reached
// directly (no proxy), so RemoteAddr is the client.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
