package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cnnviz/engine/mnist"
	"cnnviz/sessions"
	"cnnviz/stream"
)

// benchEnv is a server training on the full MNIST set when the module
// cache has it (so that benchmarks measure the steady state of an epoch,
// not the test-set evaluation at the end of the subset's short epochs).
func benchEnv(b *testing.B) (*httptest.Server, *sessions.Manager) {
	b.Helper()
	dir, err := mnist.Locate("")
	if err != nil {
		dir = "../testdata/mnist"
	}
	train, test, err := mnist.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	// No prediction limit here: the round-trip benchmark sends back to back.
	e := startEnv(b, train, test, envOptions{web: Options{PredictRate: 1 << 20}})
	return e.srv, e.mgr
}

// viewer connects a WebSocket client that reads everything it is sent, as
// a browser tab would.
func viewer(b *testing.B, srv *httptest.Server, id string, wg *sync.WaitGroup) *websocket.Conn {
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/sessions/" + id
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() {
		for { // read each message to the end, without keeping it
			_, r, err := conn.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	})
	return conn
}

// BenchmarkTrainingViewers measures keras-mnist training throughput (batch
// 128) with 0 and with 50 viewers connected to the session; one op is one
// batch. The visualisation (metrics, filters and activation maps streamed
// to every viewer, snapshots stored) must cost at most 5%.
func BenchmarkTrainingViewers(b *testing.B) {
	for _, viewers := range []int{0, 50} {
		b.Run("viewers="+jsonNumber(uint64(viewers)), func(b *testing.B) {
			srv, mgr := benchEnv(b)
			s, _, err := mgr.Create(sessions.Settings{Preset: "keras-mnist", Epochs: 100})
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, viewers)
			for i := range conns {
				conns[i] = viewer(b, srv, s.ID(), &wg)
			}
			if err := s.Control(sessions.ActionStart); err != nil {
				b.Fatal(err)
			}
			waitSteps := func(n int64) {
				for s.Record().Step < n {
					time.Sleep(time.Millisecond)
				}
			}
			waitSteps(3) // warm up: buffers, optimiser slots, viewers' history
			b.ResetTimer()
			start := s.Record().Step
			waitSteps(start + int64(b.N))
			b.StopTimer()
			b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "images/s")
			s.Control(sessions.ActionStop)
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		})
	}
}

// BenchmarkPredictRoundTrip measures a drawing's round trip over the
// WebSocket (send, preprocess, classify with every layer's maps, receive
// the answer and the maps) while a keras-mnist session trains, and reports
// the median and 99th percentile.
func BenchmarkPredictRoundTrip(b *testing.B) {
	srv, mgr := benchEnv(b)
	s, _, err := mgr.Create(sessions.Settings{Preset: "keras-mnist", Epochs: 100})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Control(sessions.ActionStart); err != nil {
		b.Fatal(err)
	}
	defer s.Control(sessions.ActionStop)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/sessions/" + s.ID()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// A 140x140 drawing, as the browser sends: a test digit scaled 5x.
	_, test := mgr.Data()
	px := make([]uint8, 140*140)
	for y := 0; y < 140; y++ {
		for x := 0; x < 140; x++ {
			px[y*140+x] = test.Image(0)[(y/5)*28+x/5]
		}
	}
	encoded := base64.StdEncoding.EncodeToString(px)
	var times []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		msg, _ := json.Marshal(map[string]any{"type": "predict", "id": i + 1, "width": 140, "height": 140, "pixels": encoded})
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		// Wait for this request's kind-3 frame, the last part of the answer.
		for {
			mt, data, err := conn.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			if mt == websocket.BinaryMessage {
				if f, err := stream.ParseImageFrame(data); err == nil && f.Kind == stream.KindPrediction && f.Seq == uint64(i+1) {
					break
				}
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
