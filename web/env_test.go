package web

import (
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"cnnviz/engine/mnist"
	"cnnviz/sessions"
	"cnnviz/stream"
)

// apiEnv is a real server for this package's tests and benchmarks: sessions
// over a fresh bbolt store, a hub, and the echo handler behind httptest on
// 127.0.0.1.
type apiEnv struct {
	srv    *httptest.Server
	server *Server
	mgr    *sessions.Manager
	hub    *stream.Hub
	tb     testing.TB
	once   sync.Once
}

// envOptions adjusts the server startEnv starts.
type envOptions struct {
	web        Options        // the server's options (Sessions, Hub and Log are filled in)
	hub        stream.Options // the hub's slow-client policy, say
	maxRunning int            // sessions that train at once; 0: one per core
	// sendBuffer, if above 0, fixes the socket send buffer of every
	// connection the server accepts, in bytes, instead of letting the
	// kernel grow it to megabytes: what a test of a stuck client must fill.
	sendBuffer int
}

// startAPIEnv starts a server on the MNIST subset in testdata.
func startAPIEnv(t *testing.T) *apiEnv {
	train, test := subsetData(t)
	return startEnv(t, train, test, envOptions{})
}

// startEnv starts a server training on train and evaluating on test. The
// test's cleanup shuts it down.
func startEnv(tb testing.TB, train, test *mnist.Set, o envOptions) *apiEnv {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub := stream.NewHub(o.hub)
	mgr, err := sessions.Open(sessions.Options{Dir: tb.TempDir(), Hub: hub, Train: train, Test: test, MaxRunning: o.maxRunning, Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	o.web.Sessions, o.web.Hub, o.web.Log = mgr, hub, log
	server := New(o.web)
	srv := httptest.NewUnstartedServer(server.Handler())
	if o.sendBuffer > 0 {
		srv.Listener = sendBufferListener{srv.Listener, o.sendBuffer}
	}
	srv.Start()
	e := &apiEnv{srv: srv, server: server, mgr: mgr, hub: hub, tb: tb}
	tb.Cleanup(e.shutdown)
	return e
}

// shutdown stops the server as viz serve does: no more requests, then the
// viewers' sockets, then training (checkpoints) and the store. Only the
// first call does anything.
func (e *apiEnv) shutdown() {
	e.once.Do(func() {
		e.srv.Close()
		e.hub.Close()
		if err := e.mgr.Close(); err != nil {
			e.tb.Error(err)
		}
	})
}

var (
	subsetOnce              sync.Once
	subsetTrain, subsetTest *mnist.Set
	subsetErr               error
)

// subsetData is the MNIST subset in testdata, read once for all tests.
func subsetData(tb testing.TB) (train, test *mnist.Set) {
	tb.Helper()
	subsetOnce.Do(func() { subsetTrain, subsetTest, subsetErr = mnist.Load(filepath.Join("..", "testdata", "mnist")) })
	if subsetErr != nil {
		tb.Fatal(subsetErr)
	}
	return subsetTrain, subsetTest
}

// sendBufferListener sets the send buffer of each connection it accepts.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(l.size); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
