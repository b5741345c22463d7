package web

import (
	"testing"

	"github.com/gorilla/websocket"
)

// FuzzClientMessage feeds arbitrary bytes to the WebSocket message decoder:
// it must never panic, and whatever it accepts must be a drawing the
// preprocessing accepts in size.
func FuzzClientMessage(f *testing.F) {
	f.Add([]byte(`{"type": "predict", "id": 1, "width": 8, "height": 8, "pixels": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"type": "predict", "id": 2, "width": 2, "height": 1, "values": [0, 255]}`))
	f.Add([]byte(`{"type": "dance"}`))
	f.Add([]byte(`{"type": "predict", "width": -1, "height": 3}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, d, err := decodeClientMessage(websocket.TextMessage, data)
		if err != nil {
			return
		}
		if d.W <= 0 || d.H <= 0 || len(d.Pixels) != d.W*d.H {
			t.Fatalf("accepted a %dx%d drawing with %d pixels", d.W, d.H, len(d.Pixels))
		}
	})
}
