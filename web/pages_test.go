package web

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"cnnviz/internal/htmlq"

	"cnnviz/engine"
	"cnnviz/sessions"
	"cnnviz/stream"
)

// newPagesServer runs the web server over a fresh store with the MNIST
// subset of testdata. Nothing trains unless a test starts it.
func newPagesServer(t *testing.T) (*Server, *sessions.Manager) {
	t.Helper()
	e := startAPIEnv(t)
	return e.server, e.mgr
}

// get answers a GET request, with cookies if any.
func get(t *testing.T, s *Server, target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// parse parses a page, failing the test on malformed HTML.
func parse(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// scripts returns the src of every script and fails on inline scripts
// other than JSON data: the pages must run under a Content-Security-Policy
// without 'unsafe-inline'.
func scripts(t *testing.T, doc *html.Node) []string {
	t.Helper()
	var srcs []string
	for d := range doc.Descendants() {
		if d.Type != html.ElementNode {
			continue
		}
		for _, a := range d.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("inline event handler %s on <%s>", a.Key, d.Data)
			}
			if a.Key == "style" {
				t.Errorf("inline style on <%s>", d.Data)
			}
		}
		if d.Data != "script" {
			continue
		}
		switch typ := htmlq.Attr(d, "type"); {
		case typ == "application/json":
		case typ == "module" && htmlq.Attr(d, "src") != "" && htmlq.Text(d) == "":
			srcs = append(srcs, htmlq.Attr(d, "src"))
		default:
			t.Errorf("inline or classic script: type %q src %q", typ, htmlq.Attr(d, "src"))
		}
	}
	return srcs
}

func TestHomePage(t *testing.T) {
	s, mgr := newPagesServer(t)
	t.Run("no sessions", func(t *testing.T) {
		rec := get(t, s, "/")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d", rec.Code)
		}
		doc := parse(t, rec.Body.String())
		for _, id := range []string{"draw-canvas", "prediction", "probabilities", "create-form", "no-sessions"} {
			if len(htmlq.ByTestID(doc, id)) != 1 {
				t.Errorf("want one element with data-testid=%q", id)
			}
		}
		if got := htmlq.Text(htmlq.ByTestID(doc, "prediction")[0]); got != "" {
			t.Errorf("prediction before any drawing = %q, want empty", got)
		}
		if srcs := scripts(t, doc); len(srcs) != 1 || !strings.HasSuffix(srcs[0], "/js/home.js") {
			t.Errorf("scripts = %q, want home.js alone", srcs)
		}
	})

	first, _, err := mgr.Create(sessions.Settings{Name: "first", Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := mgr.Create(sessions.Settings{Name: "second", Preset: "lenet5"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sessions", func(t *testing.T) {
		rec := get(t, s, "/")
		doc := parse(t, rec.Body.String())
		var ids []string
		for d := range doc.Descendants() {
			if d.Type == html.ElementNode && htmlq.Has(d, "data-session-row") {
				ids = append(ids, htmlq.Attr(d, "data-id"))
			}
		}
		if want := []string{second.ID(), first.ID()}; !slices.Equal(ids, want) {
			t.Errorf("rows = %q, want newest first %q", ids, want)
		}
		// Neither has been evaluated nor trains: the newest is the model.
		var model string
		for d := range doc.Descendants() {
			if d.Type == html.ElementNode && htmlq.Has(d, "data-home-draw") {
				model = htmlq.Attr(d, "data-model-id")
			}
		}
		if model != second.ID() {
			t.Errorf("drawing asks %q, want the newest session %q", model, second.ID())
		}
		statuses := htmlq.ByTestID(doc, "row-status")
		if len(statuses) != 2 || htmlq.Text(statuses[0]) != "created" {
			t.Errorf("row statuses: %d, first %q", len(statuses), htmlq.Text(statuses[0]))
		}
	})
}

func TestSessionPage(t *testing.T) {
	s, mgr := newPagesServer(t)
	sess, token, err := mgr.Create(sessions.Settings{Name: "page test", Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/sessions/" + sess.ID()
	owner := &http.Cookie{Name: "owner_" + sess.ID(), Value: token}

	t.Run("viewer", func(t *testing.T) {
		rec := get(t, s, path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, rec.Code)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control = %q", cc)
		}
		doc := parse(t, rec.Body.String())
		for _, id := range []string{
			"draw-canvas", "prediction", "probabilities", "filters", "loss-chart", "activations",
			"summary-table", "session-status", "epoch-progress", "viewer-note", "preprocessing", "exports",
		} {
			if len(htmlq.ByTestID(doc, id)) != 1 {
				t.Errorf("want one element with data-testid=%q", id)
			}
		}
		if got := htmlq.Text(htmlq.ByTestID(doc, "session-status")[0]); got != "created" {
			t.Errorf("status = %q, want created", got)
		}
		for _, id := range []string{"control-start", "control-pause", "owner-notice"} {
			if len(htmlq.ByTestID(doc, id)) != 0 {
				t.Errorf("a viewer sees data-testid=%q", id)
			}
		}
		// The summary table: the input, then each of the tiny model's
		// layers, with the totals in the footer.
		table := htmlq.ByTestID(doc, "summary-table")[0]
		var rows []string
		for d := range table.Descendants() {
			if d.Type == html.ElementNode && d.Data == "tr" && d.Parent.Data == "tbody" {
				rows = append(rows, htmlq.Text(d.FirstChild))
			}
		}
		if want := []string{"input", "conv1", "pool1", "conv2", "pool2", "flatten1", "dense1"}; !slices.Equal(rows, want) {
			t.Errorf("summary rows = %q, want %q", rows, want)
		}
		if body := htmlq.Text(table); !strings.Contains(body, "5,258") || !strings.Contains(body, "(3*3*1)*8 + 8") {
			t.Errorf("summary table lacks the weight total or a formula: %s", body)
		}
		if srcs := scripts(t, doc); len(srcs) != 1 || !strings.HasSuffix(srcs[0], "/js/session.js") {
			t.Errorf("scripts = %q, want session.js alone", srcs)
		}
	})

	t.Run("owner", func(t *testing.T) {
		doc := parse(t, get(t, s, path, owner).Body.String())
		start := htmlq.ByTestID(doc, "control-start")
		if len(start) != 1 || htmlq.Has(start[0], "hidden") || htmlq.Has(start[0], "disabled") {
			t.Fatalf("the owner of a new session needs a visible, enabled start button")
		}
		pause := htmlq.ByTestID(doc, "control-pause")
		if len(pause) != 1 || !htmlq.Has(pause[0], "hidden") {
			t.Errorf("pause must be hidden before training starts")
		}
		if len(htmlq.ByTestID(doc, "viewer-note")) != 0 {
			t.Errorf("the owner is told they only watch")
		}
	})

	t.Run("sharing", func(t *testing.T) {
		join := "http://example.com" + path // httptest's requests come to example.com
		viewer := get(t, s, path)
		doc := parse(t, viewer.Body.String())
		if links := htmlq.ByTestID(doc, "join-link"); len(links) != 1 || htmlq.Attr(links[0], "value") != join {
			t.Errorf("join link: want one, %q", join)
		}
		if links := htmlq.ByTestID(doc, "present-link"); len(links) != 1 || htmlq.Attr(links[0], "href") != path+"/present" {
			t.Errorf("present link: want one to %s/present", path)
		}
		if len(htmlq.ByTestID(doc, "teacher-link")) != 0 || strings.Contains(viewer.Body.String(), token) {
			t.Fatal("a viewer's page carries the owner token")
		}
		rec := get(t, s, path, owner)
		links := htmlq.ByTestID(parse(t, rec.Body.String()), "teacher-link")
		if len(links) != 1 || htmlq.Attr(links[0], "value") != join+"?owner="+token {
			t.Errorf("the owner's page lacks the teacher link %s?owner=…", join)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("the page with the owner token has Cache-Control %q, want no-store", cc)
		}
	})

	t.Run("owner link", func(t *testing.T) {
		rec := get(t, s, path+"?owner="+token)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path {
			t.Fatalf("right owner link: %d to %q, want 303 to %s", rec.Code, rec.Header().Get("Location"), path)
		}
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != owner.Name || cookies[0].Value != token || !cookies[0].HttpOnly {
			t.Fatalf("right owner link sets cookies %v, want an HttpOnly %s", cookies, owner.Name)
		}
		if got := rec.Header().Get("Referrer-Policy"); got != "" && got != "same-origin" {
			t.Errorf("Referrer-Policy = %q", got)
		}
	})

	t.Run("wrong owner link", func(t *testing.T) {
		rec := get(t, s, path+"?owner=not-the-token")
		if rec.Code != http.StatusOK {
			t.Fatalf("wrong owner link: %d, want the page", rec.Code)
		}
		if c := rec.Result().Cookies(); len(c) != 0 {
			t.Errorf("a wrong owner link set cookies %v", c)
		}
		doc := parse(t, rec.Body.String())
		if len(htmlq.ByTestID(doc, "owner-notice")) != 1 || len(htmlq.ByTestID(doc, "viewer-note")) != 1 {
			t.Errorf("a wrong owner link must show the page to a viewer, with a notice")
		}
		if len(htmlq.ByTestID(doc, "control-start")) != 0 {
			t.Errorf("a wrong owner link shows the controls")
		}
	})

	t.Run("unknown session", func(t *testing.T) {
		rec := get(t, s, "/sessions/nosuchsession")
		if rec.Code != http.StatusNotFound {
			t.Fatalf("GET unknown session = %d, want 404", rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Content-Type = %q, want the HTML page", ct)
		}
		if len(htmlq.ByTestID(parse(t, rec.Body.String()), "not-found")) != 1 {
			t.Errorf("the 404 page lacks its not-found element")
		}
	})
}

func TestStaticFiles(t *testing.T) {
	s, _ := newPagesServer(t)
	base := s.assets.base()
	tests := []struct {
		path, wantType, wantCache string
		wantCode                  int
	}{
		{base + "js/session.js", "javascript", "immutable", http.StatusOK},
		{base + "css/app.css", "text/css", "immutable", http.StatusOK},
		{base + "favicon.svg", "image/svg+xml", "immutable", http.StatusOK},
		{"/static/0123456789ab/js/home.js", "javascript", "no-cache", http.StatusOK},
		{base + "js/nosuch.js", "", "", http.StatusNotFound},
		{base + "js", "", "", http.StatusNotFound},
		{base + "../assets.go", "", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := get(t, s, tt.path)
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s = %d, want %d", tt.path, rec.Code, tt.wantCode)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, tt.wantCache) {
				t.Errorf("Cache-Control = %q, want %s", cc, tt.wantCache)
			}
		})
	}
	// A page's asset links all resolve.
	doc := parse(t, get(t, s, "/").Body.String())
	for d := range doc.Descendants() {
		if d.Type != html.ElementNode {
			continue
		}
		for _, name := range []string{"href", "src"} {
			if v := htmlq.Attr(d, name); strings.HasPrefix(v, "/static/") {
				if rec := get(t, s, v); rec.Code != http.StatusOK {
					t.Errorf("%s=%q: %d", name, v, rec.Code)
				}
			}
		}
	}
}

// Every module a page loads imports only modules that exist.
func TestModuleImports(t *testing.T) {
	s, _ := newPagesServer(t)
	seen := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		rec := get(t, s, s.assets.base()+"js/"+name)
		if rec.Code != http.StatusOK {
			t.Errorf("js/%s: %d", name, rec.Code)
			return
		}
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if !strings.HasPrefix(line, "import ") {
				continue
			}
			_, from, ok := strings.Cut(line, " from './")
			if !ok {
				t.Errorf("js/%s: import not relative to the folder: %s", name, line)
				continue
			}
			visit(strings.TrimSuffix(strings.TrimSuffix(from, ";"), "'"))
		}
	}
	visit("home.js")
	visit("session.js")
	if len(seen) < 8 {
		t.Errorf("found only %d modules", len(seen))
	}
}

func TestBestModel(t *testing.T) {
	acc := func(v float64) *float64 { return &v }
	tests := []struct {
		name  string
		infos []sessions.Info
		want  string
	}{
		{"none", nil, ""},
		{"newest when nothing trains", []sessions.Info{{ID: "new", Status: sessions.StatusCreated}, {ID: "old", Status: sessions.StatusStopped}}, "new"},
		{"a training one", []sessions.Info{{ID: "new", Status: sessions.StatusCreated}, {ID: "run", Status: sessions.StatusRunning}}, "run"},
		{"the most accurate", []sessions.Info{
			{ID: "run", Status: sessions.StatusRunning},
			{ID: "good", Status: sessions.StatusFinished, TestAcc: acc(0.95)},
			{ID: "better", Status: sessions.StatusPaused, TestAcc: acc(0.98)},
		}, "better"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if b := bestModel(tt.infos); b != nil {
				got = b.ID
			}
			if got != tt.want {
				t.Errorf("bestModel = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDownsample(t *testing.T) {
	if got := downsample(nil, 60); len(got) != 0 {
		t.Errorf("downsample(nil) = %v", got)
	}
	if got := downsample([]float64{1, 2, 3}, 60); !slices.Equal(got, []float64{1, 2, 3}) {
		t.Errorf("short series = %v, want it unchanged", got)
	}
	values := make([]float64, 1000)
	for i := range values {
		values[i] = float64(i)
	}
	got := downsample(values, 10)
	if len(got) != 10 || got[0] != 49.5 || got[9] != 949.5 {
		t.Errorf("downsample(0..999, 10) = %v, want bucket means 49.5 .. 949.5", got)
	}
}

func TestSummaryTable(t *testing.T) {
	p, err := engine.LookupPreset("keras-mnist")
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Build(p.Spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	table := summaryTable(engine.Summarize(m))
	if table.Rows[0].Name != "input" || table.Rows[0].Output != "28x28x1" {
		t.Errorf("first row = %+v, want the input", table.Rows[0])
	}
	conv2 := table.Rows[2]
	if conv2.Output != "24x24x64" || conv2.Weights != "18,496" || conv2.Formula != "(3*3*32)*64 + 64" {
		t.Errorf("conv2 row = %+v", conv2)
	}
	if pool := table.Rows[3]; pool.Weights != "0" || pool.Formula != "" {
		t.Errorf("pool row = %+v", pool)
	}
	// The article's reference model: 1,199,882 weights.
	if table.TotalWeights != "1,199,882" {
		t.Errorf("total weights = %s", table.TotalWeights)
	}
}

func TestProgress(t *testing.T) {
	cfg := sessions.Config{Epochs: 4}
	tests := []struct {
		info      sessions.Info
		wantShare float64
		wantText  string
	}{
		{sessions.Info{Status: sessions.StatusCreated, Config: cfg, BatchesPerEpoch: 125}, 0, "not started: 4 epochs of 125 batches"},
		{sessions.Info{Status: sessions.StatusRunning, Config: cfg, BatchesPerEpoch: 125, Step: 250, Epoch: 2, Batch: 0}, 0.5, "epoch 3 of 4 · batch 0 of 125"},
		{sessions.Info{Status: sessions.StatusFinished, Config: cfg, BatchesPerEpoch: 125, Step: 500, Epoch: 4}, 1, "done: 4 epochs trained"},
	}
	for _, tt := range tests {
		share, text := progress(tt.info)
		if share != tt.wantShare || text != tt.wantText {
			t.Errorf("progress(%s, step %d) = %v, %q; want %v, %q", tt.info.Status, tt.info.Step, share, text, tt.wantShare, tt.wantText)
		}
	}
}

func TestLossHistory(t *testing.T) {
	s, mgr := newPagesServer(t)
	sess, _, err := mgr.Create(sessions.Settings{Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Control(sessions.ActionStep); err != nil {
		t.Fatal(err)
	}
	if err := sess.Control(sessions.ActionStep); err != nil {
		t.Fatal(err)
	}
	if err := sess.Control(sessions.ActionStop); err != nil {
		t.Fatal(err)
	}
	// The store writes in the background: wait for the two points.
	var losses []float64
	var seq uint64
	for range 200 {
		if losses, seq, err = s.lossHistory(sess.ID()); err != nil {
			t.Fatal(err)
		}
		if len(losses) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(losses) != 2 || seq == 0 {
		t.Fatalf("loss history = %v (seq %d), want the 2 batches stepped", losses, seq)
	}
	if losses[0] <= 0 || losses[0] > 5 {
		t.Errorf("first batch loss %v, want about 2.3", losses[0])
	}
}

func TestPresentPage(t *testing.T) {
	s, mgr := newPagesServer(t)
	sess, token, err := mgr.Create(sessions.Settings{Name: "present test", Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/sessions/" + sess.ID() + "/present"
	owner := &http.Cookie{Name: "owner_" + sess.ID(), Value: token}

	rec := get(t, s, path)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", path, rec.Code)
	}
	doc := parse(t, rec.Body.String())
	for _, id := range []string{"present-loss", "present-accuracy", "present-filters", "present-activations", "present-status", "join-url"} {
		if len(htmlq.ByTestID(doc, id)) != 1 {
			t.Errorf("want one element with data-testid=%q", id)
		}
	}
	if got := htmlq.Text(htmlq.ByTestID(doc, "join-url")[0]); got != "example.com/sessions/"+sess.ID() {
		t.Errorf("join address = %q", got)
	}
	if srcs := scripts(t, doc); len(srcs) != 1 || !strings.HasSuffix(srcs[0], "/js/present.js") {
		t.Errorf("scripts = %q, want present.js alone", srcs)
	}
	if strings.Contains(rec.Body.String(), "pause or resume") {
		t.Error("a viewer is offered the owner's keys")
	}
	if body := get(t, s, path, owner).Body.String(); !strings.Contains(body, "pause or resume") {
		t.Error("the owner is not told the keys")
	}
	if rec := get(t, s, "/sessions/nosuchsession/present"); rec.Code != http.StatusNotFound {
		t.Errorf("GET an unknown session's present view = %d, want 404", rec.Code)
	}

	// With a share address configured (the server on 0.0.0.0), links use
	// it rather than the address the request came to.
	hub := stream.NewHub(stream.Options{})
	t.Cleanup(hub.Close)
	shared := New(Options{Sessions: mgr, Hub: hub, ShareURL: "http://10.1.2.3:8080/"})
	doc = parse(t, get(t, shared, path).Body.String())
	if got := htmlq.Attr(htmlq.ByTestID(doc, "join-url")[0], "href"); got != "http://10.1.2.3:8080/sessions/"+sess.ID() {
		t.Errorf("join link with a share address = %q", got)
	}
}

func TestAddressesPeopleType(t *testing.T) {
	s, mgr := newPagesServer(t)
	sess, _, err := mgr.Create(sessions.Settings{Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	browse := func(target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	// A trailing slash leads to the page without it.
	for _, path := range []string{"/sessions/" + sess.ID(), "/sessions/" + sess.ID() + "/present"} {
		rec := browse(path + "/")
		if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != path {
			t.Errorf("GET %s/ = %d to %q, want 301 to %s", path, rec.Code, rec.Header().Get("Location"), path)
		}
	}
	// An address that is no page gets the not-found page in a browser,
	// JSON elsewhere.
	rec := browse("/no/such/page")
	if rec.Code != http.StatusNotFound || len(htmlq.ByTestID(parse(t, rec.Body.String()), "not-found")) != 1 {
		t.Errorf("a browser asking for a missing page gets %d %.60q, want the not-found page", rec.Code, rec.Body.String())
	}
	for _, target := range []string{"/no/such/page", "/api/no/such/thing"} {
		if rec := get(t, s, target); rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("GET %s without Accept: text/html = %d %q, want a JSON 404", target, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	if rec := browse("/api/no/such/thing"); !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("the API answers a browser's miss with %q, want JSON", rec.Header().Get("Content-Type"))
	}
}
