package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"cnnviz/sessions"
	"cnnviz/stream"
)

// apiRequest builds an API request as a script would: a JSON body, if
// any, and the owner token, if any, as a bearer token.
func apiRequest(t testing.TB, method, url, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (e *apiEnv) do(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(apiRequest(t, method, e.srv.URL+path, token, body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %q", method, path, err, data)
		}
	}
	return resp
}

func (e *apiEnv) create(t *testing.T, settings string) createResponse {
	t.Helper()
	var cr createResponse
	if resp := e.do(t, "POST", "/api/sessions", "", settings, &cr); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	return cr
}

func TestCreateValidation(t *testing.T) {
	e := startAPIEnv(t)
	cases := []struct {
		body        string
		status      int
		field, text string
	}{
		{`{"preset": "tiny", "learningRate": -1}`, 400, "learningRate", "learningRate"},
		{`{"preset": "tiny", "batchSize": 100000}`, 400, "batchSize", "batchSize"},
		{`{"layers": [{"type": "conv2d", "filters": 8, "kernel": 40}]}`, 400, "layers[0]", "kernel"},
		{`{"preset": "tiny", "colour": "red"}`, 400, "", `unknown field "colour"`},
		{`{"preset": "tiny", "epochs": "many"}`, 400, "", "epochs"},
		{`{"preset": `, 400, "", "invalid JSON"},
		{``, 400, "", "empty request body"},
		{`{"preset": "tiny"} {}`, 400, "", "trailing data"},
	}
	for _, tc := range cases {
		var body map[string]string
		resp := e.do(t, "POST", "/api/sessions", "", tc.body, &body)
		if resp.StatusCode != tc.status || body["field"] != tc.field || !strings.Contains(body["error"], tc.text) {
			t.Errorf("%s: %d %v, want %d field %q mentioning %q", tc.body, resp.StatusCode, body, tc.status, tc.field, tc.text)
		}
	}
	big := `{"name": "` + strings.Repeat("x", 600<<10) + `"}`
	if resp := e.do(t, "POST", "/api/sessions", "", big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d", resp.StatusCode)
	}
	var list []sessions.Info
	e.do(t, "GET", "/api/sessions", "", "", &list)
	if len(list) != 0 {
		t.Errorf("failed creates left %d sessions", len(list))
	}
}

func TestOwnerOnlyControl(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny"}`)
	if cr.ID == "" || len(cr.OwnerToken) < 32 {
		t.Fatalf("create answered %+v", cr)
	}
	path := "/api/sessions/" + cr.ID
	if resp := e.do(t, "POST", path+"/start", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("start without a token: %d", resp.StatusCode)
	}
	if resp := e.do(t, "POST", path+"/start", "wrong-token", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("start with a wrong token: %d", resp.StatusCode)
	}
	if resp := e.do(t, "DELETE", path, "wrong-token", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("delete with a wrong token: %d", resp.StatusCode)
	}
	var info sessions.Info
	if resp := e.do(t, "POST", path+"/start", cr.OwnerToken, "", &info); resp.StatusCode != http.StatusOK {
		t.Fatalf("start with the token: %d", resp.StatusCode)
	}
	if resp := e.do(t, "POST", path+"/step", cr.OwnerToken, "", nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("step while running: %d, want 409", resp.StatusCode)
	}
	if resp := e.do(t, "POST", path+"/stop", cr.OwnerToken, "", &info); resp.StatusCode != http.StatusOK || info.Status != sessions.StatusStopped {
		t.Errorf("stop: %d %s", resp.StatusCode, info.Status)
	}
	if resp := e.do(t, "GET", "/api/sessions/nope", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: %d", resp.StatusCode)
	}
	if resp := e.do(t, "DELETE", path, cr.OwnerToken, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp := e.do(t, "GET", path, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("after delete: %d", resp.StatusCode)
	}
}

// wsClient is a viewer on a session's stream.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func (e *apiEnv) dial(t *testing.T, id string, since uint64) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/sessions/" + id
	if since > 0 {
		url += "?since=" + jsonNumber(since)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

func jsonNumber(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// next returns the next text message (skipping binary frames unless
// wantBinary), failing the test after a generous deadline.
func (c *wsClient) next(wantBinary bool) (stream.Envelope, []byte) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("reading the stream: %v", err)
		}
		if mt == websocket.BinaryMessage {
			if wantBinary {
				return stream.Envelope{}, data
			}
			continue
		}
		var env stream.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			c.t.Fatalf("bad message %q: %v", data, err)
		}
		return env, data
	}
}

// TestStreamHistoryAndResume trains a session to the end, then checks that
// a new viewer gets the whole history, and one that resumes from a sequence
// number gets exactly what came after it.
func TestStreamHistoryAndResume(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny", "epochs": 1}`)
	live := e.dial(t, cr.ID, 0)
	e.do(t, "POST", "/api/sessions/"+cr.ID+"/start", cr.OwnerToken, "", nil)

	// The live viewer sees metrics arrive in order until the session ends.
	var seqs []uint64
	steps := 0
	for done := false; !done; {
		env, raw := live.next(false)
		switch env.Type {
		case "metrics":
			var m struct {
				Data sessions.MetricsEvent `json:"data"`
			}
			json.Unmarshal(raw, &m)
			steps += len(m.Data.Points)
		case "status":
			var st struct {
				Data sessions.StatusEvent `json:"data"`
			}
			json.Unmarshal(raw, &st)
			done = st.Data.Status == sessions.StatusFinished
		}
		if env.Type != "state" {
			if len(seqs) > 0 && env.Seq <= seqs[len(seqs)-1] {
				t.Fatalf("seq %d after %d", env.Seq, seqs[len(seqs)-1])
			}
			seqs = append(seqs, env.Seq)
		}
	}
	info := sessions.Info{}
	e.do(t, "GET", "/api/sessions/"+cr.ID, "", "", &info)
	if steps != int(info.Step) {
		t.Errorf("live viewer saw %d batches, the session trained %d", steps, info.Step)
	}

	// A new viewer gets the same durable messages, in order.
	fresh := e.dial(t, cr.ID, 0)
	for i, want := range seqs {
		env, _ := fresh.next(false)
		for env.Type == "state" {
			env, _ = fresh.next(false)
		}
		if env.Seq != want {
			t.Fatalf("history message %d has seq %d, want %d", i, env.Seq, want)
		}
	}
	// A viewer resuming after the middle gets exactly the rest.
	mid := seqs[len(seqs)/2]
	resumed := e.dial(t, cr.ID, mid)
	for _, want := range seqs[len(seqs)/2+1:] {
		env, _ := resumed.next(false)
		for env.Type == "state" {
			env, _ = resumed.next(false)
		}
		if env.Seq != want {
			t.Fatalf("resumed viewer got seq %d, want %d", env.Seq, want)
		}
	}
	// The HTTP history says the same.
	var hist []stream.Envelope
	e.do(t, "GET", "/api/sessions/"+cr.ID+"/history?since="+jsonNumber(mid), "", "", &hist)
	if len(hist) != len(seqs)-len(seqs)/2-1 {
		t.Errorf("HTTP history after %d has %d events, want %d", mid, len(hist), len(seqs)-len(seqs)/2-1)
	}
}

func TestStreamPredict(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny"}`)
	c := e.dial(t, cr.ID, 0)
	_, test := e.mgr.Data()
	send := func(v any) {
		if err := c.conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	waitType := func(typ string) []byte {
		for {
			env, raw := c.next(false)
			if env.Type == typ {
				return raw
			}
		}
	}
	send(map[string]any{"type": "predict", "id": 7, "width": 28, "height": 28,
		"pixels": base64.StdEncoding.EncodeToString(test.Image(0))})
	var answer struct {
		Data struct {
			ID uint64 `json:"id"`
			sessions.Prediction
		} `json:"data"`
	}
	json.Unmarshal(waitType("prediction"), &answer)
	if answer.Data.ID != 7 || answer.Data.Input.W != 28 || len(answer.Data.Input.Pixels) != 784 {
		t.Fatalf("prediction answer %+v", answer.Data)
	}
	for { // the activations of the drawing follow as a kind-3 frame
		_, bin := c.next(true)
		if bin == nil {
			continue
		}
		f, err := stream.ParseImageFrame(bin)
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == stream.KindPrediction {
			if f.Seq != 7 || f.Groups[0].Name != "input" {
				t.Fatalf("prediction frame seq %d first group %q", f.Seq, f.Groups[0].Name)
			}
			break
		}
	}
	// Bad messages get an error answer and the connection stays usable.
	for _, bad := range []any{
		map[string]any{"type": "predict", "id": 8, "width": 28, "height": 28, "pixels": "!!"},
		map[string]any{"type": "predict", "id": 9, "width": 28, "height": 27, "pixels": base64.StdEncoding.EncodeToString(test.Image(0))},
		map[string]any{"type": "dance", "id": 10},
		map[string]any{"type": "predict", "id": 11, "width": 2, "height": 2, "values": []int{0, 0, 0, 0}},
	} {
		send(bad)
		var msg struct {
			Data struct {
				ID      uint64 `json:"id"`
				Message string `json:"message"`
			} `json:"data"`
		}
		json.Unmarshal(waitType("error"), &msg)
		if msg.Data.Message == "" {
			t.Errorf("%v: empty error", bad)
		}
	}
	c.conn.WriteMessage(websocket.TextMessage, []byte("{not json"))
	waitType("error")

	// The same over HTTP.
	var p sessions.Prediction
	body := `{"width": 28, "height": 28, "pixels": "` + base64.StdEncoding.EncodeToString(test.Image(1)) + `"}`
	if resp := e.do(t, "POST", "/api/sessions/"+cr.ID+"/predict", "", body, &p); resp.StatusCode != 200 {
		t.Fatalf("HTTP predict: %d", resp.StatusCode)
	}
	var errBody map[string]string
	if resp := e.do(t, "POST", "/api/sessions/"+cr.ID+"/predict", "", `{"width": 5000, "height": 1, "values": []}`, &errBody); resp.StatusCode != 400 {
		t.Errorf("bad HTTP predict: %d %v", resp.StatusCode, errBody)
	}
}

func TestWebSocketOriginCheck(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny"}`)
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/sessions/" + cr.ID
	_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site upgrade: err %v resp %v", err, resp)
	}
}

func TestExports(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny", "epochs": 1}`)
	s, _ := e.mgr.Get(cr.ID)
	if err := s.Control(sessions.ActionStart); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); s.Record().Status != sessions.StatusFinished; {
		if time.Now().After(deadline) {
			t.Fatal("training did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct{ path, mime, start string }{
		{"plots/loss.svg", "image/svg+xml", "<?xml"},
		{"plots/accuracy.png", "image/png", "\x89PNG"},
		{"plots/filters.png", "image/png", "\x89PNG"},
		{"plots/metrics.csv", "text/csv", "step,epoch,train_loss"},
		{"checkpoint", "application/octet-stream", "CNNVIZCK"},
		{"snapshots/100", "application/octet-stream", "\x01\x04"},
	} {
		resp, err := http.Get(e.srv.URL + "/api/sessions/" + cr.ID + "/" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.mime) || !strings.HasPrefix(string(data), tc.start) {
			t.Errorf("%s: %d %s %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), data[:min(len(data), 16)])
		}
	}
	if resp := e.do(t, "GET", "/api/sessions/"+cr.ID+"/plots/nope.gif", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown export: %d", resp.StatusCode)
	}
}

func TestPredictRateLimit(t *testing.T) {
	e := startAPIEnv(t)
	cr := e.create(t, `{"preset": "tiny"}`)
	body := `{"width": 8, "height": 8, "values": [` + strings.TrimSuffix(strings.Repeat("0,", 64), ",") + `]}`
	limited := 0
	for i := 0; i < 3*defaultPredictRate; i++ {
		var out map[string]any
		resp := e.do(t, "POST", "/api/sessions/"+cr.ID+"/predict", "", body, &out)
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("predict: %d %v", resp.StatusCode, out)
		}
	}
	if limited == 0 {
		t.Errorf("%d predictions in a burst were all answered", 3*defaultPredictRate)
	}
}
