package templates

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"cnnviz/internal/htmlq"
)

var page = Page{Title: "Test", AssetBase: "/static/v1/"}

// render renders a component and parses the result.
func render(t *testing.T, c templ.Component) *html.Node {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func one(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	nodes := htmlq.ByTestID(doc, id)
	if len(nodes) != 1 {
		t.Fatalf("%d elements with data-testid=%q, want 1", len(nodes), id)
	}
	return nodes[0]
}

func TestLayout(t *testing.T) {
	doc := render(t, NotFoundPage(NotFound{Page: page, What: `session "x"`}))
	if got := htmlq.Text(htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "title" })[0]); got != "Test · cnnviz" {
		t.Errorf("title = %q", got)
	}
	links := htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "link" && htmlq.Attr(n, "rel") == "stylesheet" })
	if len(links) != 1 || htmlq.Attr(links[0], "href") != "/static/v1/css/app.css" {
		t.Errorf("stylesheet links: %d", len(links))
	}
	if n := htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "script" }); len(n) != 0 {
		t.Errorf("the not-found page loads %d scripts, want none", len(n))
	}
	if got := htmlq.Text(one(t, doc, "not-found")); !strings.Contains(got, `no session "x" here`) {
		t.Errorf("not-found text = %q", got)
	}
}

func TestDrawPad(t *testing.T) {
	for _, steps := range []bool{false, true} {
		doc := render(t, DrawPad(steps))
		canvas := one(t, doc, "draw-canvas")
		if htmlq.Attr(canvas, "width") != "560" || htmlq.Attr(canvas, "height") != "560" {
			t.Errorf("canvas is %sx%s", htmlq.Attr(canvas, "width"), htmlq.Attr(canvas, "height"))
		}
		if got := htmlq.Text(one(t, doc, "prediction")); got != "" {
			t.Errorf("prediction = %q before any drawing", got)
		}
		bars := htmlq.Find(one(t, doc, "probabilities"), func(n *html.Node) bool { return n.Data == "li" })
		if len(bars) != 10 || htmlq.Attr(bars[7], "data-digit") != "7" {
			t.Errorf("%d probability bars", len(bars))
		}
		if got := len(htmlq.ByTestID(doc, "preprocessing")); got != map[bool]int{false: 0, true: 1}[steps] {
			t.Errorf("DrawPad(%v): %d preprocessing views", steps, got)
		}
	}
}

func TestHomePage(t *testing.T) {
	v := Home{
		Page: page,
		Sessions: []SessionRow{
			{ID: "a1", Name: "Starter", Preset: "tiny", Status: "running", Epoch: 0, Epochs: 1, Loss: "[2.3,1.1]", Seq: 12},
			{ID: "b2", Name: "Keras", Preset: "keras-mnist", Status: "finished", Epoch: 12, Epochs: 12, TestAcc: "99.12%", Loss: "[]"},
		},
		Model:        &ModelRef{ID: "b2", Name: "Keras", Status: "finished", TestAcc: "99.12%"},
		Presets:      []PresetOption{{Name: "keras-mnist"}, {Name: "tiny", Optimizer: "adam", LearningRate: 0.002, BatchSize: 32, Epochs: 1}},
		Optimizers:   []string{"adam", "sgd"},
		MaxEpochs:    100,
		MaxBatchSize: 1024,
	}
	doc := render(t, HomePage(v))
	rows := htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-session-row") })
	if len(rows) != 2 || htmlq.Attr(rows[0], "data-seq") != "12" {
		t.Fatalf("%d session rows", len(rows))
	}
	if got := htmlq.Text(rows[1]); !strings.Contains(got, "99.12%") || !strings.Contains(got, "12 / 12") {
		t.Errorf("second row = %q", got)
	}
	draw := htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-home-draw") })
	if len(draw) != 1 || htmlq.Attr(draw[0], "data-model-id") != "b2" {
		t.Errorf("the drawing card does not name the model")
	}
	if got := htmlq.Text(one(t, doc, "home-model")); !strings.Contains(got, "Keras (99.12% on the test images)") {
		t.Errorf("model line = %q", got)
	}
	// The presets reach the script as JSON, and the form offers each.
	data := htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "script" && htmlq.Attr(n, "id") == "presets-data" })
	if len(data) != 1 {
		t.Fatal("no presets JSON")
	}
	var presets []PresetOption
	if err := json.Unmarshal([]byte(data[0].FirstChild.Data), &presets); err != nil || len(presets) != 2 || presets[1].LearningRate != 0.002 {
		t.Errorf("presets JSON = %v (%v)", presets, err)
	}
	form := one(t, doc, "create-form")
	for _, field := range []string{"name", "preset", "learningRate", "batchSize", "epochs", "seed", "optimizer", "layers", "dropout"} {
		if len(htmlq.Find(form, func(n *html.Node) bool { return htmlq.Attr(n, "name") == field })) != 1 {
			t.Errorf("the form lacks the field %q", field)
		}
		if field == "dropout" {
			continue
		}
		if len(htmlq.Find(form, func(n *html.Node) bool { return htmlq.Attr(n, "data-error-for") == field })) != 1 {
			t.Errorf("the form has no place for an error of %q", field)
		}
	}
	selected := htmlq.Find(form, func(n *html.Node) bool { return n.Data == "option" && htmlq.Has(n, "selected") })
	if len(selected) != 1 || htmlq.Attr(selected[0], "value") != "tiny" {
		t.Errorf("the tiny preset is not the default choice")
	}

	v.Model, v.Sessions = nil, nil
	doc = render(t, HomePage(v))
	if len(htmlq.ByTestID(doc, "no-sessions")) != 1 || len(htmlq.ByTestID(doc, "home-model")) != 0 {
		t.Errorf("without sessions the home page must say so")
	}
}

func TestSessionView(t *testing.T) {
	base := SessionPage{
		Page: page, ID: "s1", Name: "My run", Status: "running", Preset: "tiny", Optimizer: "adam, learning rate 0.002",
		BatchSize: 32, Epochs: 3, Seed: 1, Dropout: true, Architecture: "input 28×28×1 → CONV3-8 relu",
		BatchesPerEpoch: 125, Step: 140, Epoch: 1, Batch: 15, Progress: 0.37, ProgressText: "epoch 2 of 3 · batch 15 of 125",
		Probe: 7, TestImages: 1000,
		Summary: SummaryTable{
			Rows:             []SummaryRow{{Name: "input", Output: "28x28x1"}, {Name: "conv1", Description: "CONV3-8 relu", Output: "26x26x8", Weights: "80", Formula: "(3*3*1)*8 + 8"}},
			TotalActivations: "6,192", TotalMemory: "24.2 KB", TotalWeights: "80",
		},
		Exports: []Export{{Label: "Loss curve (SVG)", Href: "/api/sessions/s1/plots/loss.svg"}, {Label: "Checkpoint", Href: "/api/sessions/s1/checkpoint", Checkpoint: true, Hidden: true}},
	}

	t.Run("viewer", func(t *testing.T) {
		doc := render(t, SessionView(base))
		root := htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-session") })[0]
		for name, want := range map[string]string{"data-session-id": "s1", "data-owner": "false", "data-probe": "7", "data-test-images": "1000", "data-batches-per-epoch": "125"} {
			if got := htmlq.Attr(root, name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if got := htmlq.Text(one(t, doc, "session-status")); got != "running" {
			t.Errorf("status = %q", got)
		}
		if got := htmlq.Attr(one(t, doc, "epoch-progress"), "value"); got != "0.3700" {
			t.Errorf("progress value = %q", got)
		}
		one(t, doc, "viewer-note")
		if n := htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-action") }); len(n) != 0 {
			t.Errorf("a viewer gets %d controls", len(n))
		}
		if n := htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-probe-input") }); len(n) != 0 {
			t.Errorf("a viewer can pick the probe image")
		}
		for _, id := range []string{"loss-chart", "accuracy-chart", "filters", "activations", "summary-table", "mistakes", "confusion", "draw-canvas", "prediction", "probabilities", "preprocessing"} {
			one(t, doc, id)
		}
		if got := htmlq.Text(one(t, doc, "summary-table")); !strings.Contains(got, "26×26×8") || !strings.Contains(got, "(3*3*1)*8 + 8") {
			t.Errorf("summary table = %q", got)
		}
		checkpoint := htmlq.Find(one(t, doc, "exports"), func(n *html.Node) bool { return htmlq.Has(n, "data-checkpoint") })
		if len(checkpoint) != 1 || !htmlq.Has(checkpoint[0], "hidden") {
			t.Errorf("the checkpoint link must wait for a checkpoint")
		}
		// Explanations are folded away.
		if n := htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "details" && htmlq.Has(n, "open") }); len(n) != 0 {
			t.Errorf("%d explanations are open by default", len(n))
		}
		if n := htmlq.Find(doc, func(n *html.Node) bool { return n.Data == "details" }); len(n) < 6 {
			t.Errorf("only %d explanations", len(n))
		}
	})

	t.Run("warning", func(t *testing.T) {
		if w := one(t, render(t, SessionView(base)), "warning"); !htmlq.Has(w, "hidden") {
			t.Error("an empty warning is shown")
		}
		v := base
		v.Warning = "checkpoint at batch 8 of epoch 1 failed: write: file too large"
		if w := one(t, render(t, SessionView(v)), "warning"); htmlq.Has(w, "hidden") || htmlq.Text(w) != v.Warning {
			t.Errorf("warning %q: hidden %v, text %q", v.Warning, htmlq.Has(w, "hidden"), htmlq.Text(w))
		}
	})

	// The owner's controls follow the status: which of start, pause and
	// resume shows, and whether step and stop apply.
	tests := []struct {
		status  string
		visible []string
		enabled []string
	}{
		{"created", []string{"start", "step", "stop"}, []string{"start", "step", "stop"}},
		{"queued", []string{"pause", "step", "stop"}, []string{"pause", "stop"}},
		{"running", []string{"pause", "step", "stop"}, []string{"pause", "stop"}},
		{"paused", []string{"resume", "step", "stop"}, []string{"resume", "step", "stop"}},
		{"finished", []string{"step", "stop"}, nil},
		{"stopped", []string{"step", "stop"}, nil},
		{"diverged", []string{"step", "stop"}, nil},
		{"failed", []string{"step", "stop"}, nil},
	}
	for _, tt := range tests {
		t.Run("owner "+tt.status, func(t *testing.T) {
			v := base
			v.Owner, v.Status = true, tt.status
			doc := render(t, SessionView(v))
			var visible, enabled []string
			for _, b := range htmlq.Find(doc, func(n *html.Node) bool { return htmlq.Has(n, "data-action") }) {
				a := htmlq.Attr(b, "data-action")
				if htmlq.Attr(b, "data-testid") != "control-"+a {
					t.Errorf("control %q has data-testid %q", a, htmlq.Attr(b, "data-testid"))
				}
				if !htmlq.Has(b, "hidden") {
					visible = append(visible, a)
				}
				if !htmlq.Has(b, "disabled") {
					enabled = append(enabled, a)
				}
			}
			if !slices.Equal(visible, tt.visible) || !slices.Equal(enabled, tt.enabled) {
				t.Errorf("visible %q enabled %q, want %q and %q", visible, enabled, tt.visible, tt.enabled)
			}
			if len(htmlq.ByTestID(doc, "viewer-note")) != 0 {
				t.Errorf("the owner is told they only watch")
			}
		})
	}

	t.Run("notice", func(t *testing.T) {
		v := base
		v.Notice = "This owner link does not match"
		if got := htmlq.Text(one(t, render(t, SessionView(v)), "owner-notice")); got != v.Notice {
			t.Errorf("notice = %q", got)
		}
	})
}
