package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"cnnviz/engine"
	"cnnviz/sessions"
	"cnnviz/web/templates"
)

// Render renders component into a buffer first and only then answers with
// status, so that a component failing half-way yields an error page rather
// than half a page with 200 OK.
func Render(c echo.Context, status int, component templ.Component) error {
	var buf bytes.Buffer
	if err := component.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	h := c.Response().Header()
	// Pages differ by viewer (the owner's controls), so a cache must ask;
	// a handler may ask for more (no-store for a page with a token).
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	// An owner link carries the token in its query string: never let it
	// leave the site in a Referer header.
	h.Set("Referrer-Policy", "same-origin")
	return c.HTMLBlob(status, buf.Bytes())
}

// page returns the layout's view model.
func (s *Server) page(title string) templates.Page {
	return templates.Page{Title: title, AssetBase: s.assets.base()}
}

// optimizers are the optimiser names the form offers; sessions validates
// them (engine.NewOptimizer).
var optimizers = []string{"adam", "sgd", "adadelta"}

// homePage answers GET /: the sessions, the form and the drawing canvas
// against the best model.
func (s *Server) homePage(c echo.Context) error {
	infos := s.sessions.List()
	v := templates.Home{
		Page:         s.page("Sessions"),
		Sessions:     make([]templates.SessionRow, 0, len(infos)),
		Presets:      presetOptions(),
		Optimizers:   optimizers,
		MaxEpochs:    sessions.MaxEpochs,
		MaxBatchSize: sessions.MaxBatchSize,
	}
	for _, info := range infos {
		v.Sessions = append(v.Sessions, s.sessionRow(info))
	}
	if best := bestModel(infos); best != nil {
		v.Model = &templates.ModelRef{ID: best.ID, Name: best.Name, Status: string(best.Status), TestAcc: percent(best.TestAcc)}
	}
	return Render(c, http.StatusOK, templates.HomePage(v))
}

// bestModel chooses the session the home page's drawing canvas asks: the
// one with the highest last test accuracy, else one that is training (it
// gets better while the person draws), else the newest. It returns nil when
// there are no sessions.
func bestModel(infos []sessions.Info) *sessions.Info {
	var best *sessions.Info
	for i := range infos {
		in := &infos[i]
		if in.TestAcc != nil && (best == nil || *in.TestAcc > *best.TestAcc) {
			best = in
		}
	}
	if best != nil {
		return best
	}
	for i := range infos {
		if infos[i].Status == sessions.StatusRunning || infos[i].Status == sessions.StatusQueued {
			return &infos[i]
		}
	}
	if len(infos) > 0 {
		return &infos[0] // List is newest first
	}
	return nil
}

// sparklinePoints is how many values a session's loss sparkline keeps.
const sparklinePoints = 60

// sessionRow builds a row of the home page's list, with its loss sparkline
// read from the stored history.
func (s *Server) sessionRow(info sessions.Info) templates.SessionRow {
	row := templates.SessionRow{
		ID: info.ID, Name: info.Name, Preset: info.Config.Preset, Status: string(info.Status),
		Reason: info.StatusReason, Epoch: info.Epoch, Epochs: info.Config.Epochs,
		TestAcc: percent(info.TestAcc), Loss: "[]",
	}
	losses, seq, err := s.lossHistory(info.ID)
	if err != nil {
		s.log.Warn("reading a session's loss history", "session", info.ID, "err", err)
		return row
	}
	row.Seq = seq
	if b, err := json.Marshal(downsample(losses, sparklinePoints)); err == nil {
		row.Loss = string(b)
	}
	return row
}

// lossHistory returns a session's training loss per batch from its stored
// events, rewinds applied, and the sequence number of the last event read:
// the page asks for the events after it to keep the sparkline growing.
func (s *Server) lossHistory(id string) (losses []float64, seq uint64, err error) {
	events, err := s.sessions.Store().Events(id, 0)
	if err != nil {
		return nil, 0, err
	}
	var steps []int64
	for _, e := range events {
		seq = max(seq, e.Seq)
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(e.Data, &env); err != nil {
			return nil, 0, fmt.Errorf("event %d: %w", e.Seq, err)
		}
		switch env.Type {
		case "metrics":
			var m sessions.MetricsEvent
			if err := json.Unmarshal(env.Data, &m); err != nil {
				return nil, 0, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			for _, p := range m.Points {
				losses = append(losses, float64(p.Loss))
				steps = append(steps, p.Step)
			}
		case "rewind":
			var r sessions.RewindEvent
			if err := json.Unmarshal(env.Data, &r); err != nil {
				return nil, 0, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			for len(steps) > 0 && steps[len(steps)-1] > r.Step {
				steps, losses = steps[:len(steps)-1], losses[:len(losses)-1]
			}
		}
	}
	return losses, seq, nil
}

// downsample averages values into at most n buckets of (nearly) equal
// size, rounded to 4 significant digits: a sparkline needs no more.
func downsample(values []float64, n int) []float64 {
	out := make([]float64, 0, min(len(values), n))
	if len(values) == 0 {
		return out
	}
	buckets := min(len(values), n)
	for b := range buckets {
		from, to := b*len(values)/buckets, (b+1)*len(values)/buckets
		var sum float64
		for _, v := range values[from:to] {
			sum += v
		}
		v, _ := strconv.ParseFloat(strconv.FormatFloat(sum/float64(to-from), 'g', 4, 64), 64)
		out = append(out, v)
	}
	return out
}

// presetOptions lists the presets for the form, each with the settings it
// brings, so that the form can show them as placeholders.
func presetOptions() []templates.PresetOption {
	presets := engine.Presets()
	out := make([]templates.PresetOption, 0, len(presets))
	for _, p := range presets {
		layers, err := json.MarshalIndent(p.Spec.Layers, "", "  ")
		if err != nil {
			layers = []byte("[]")
		}
		opt := p.Optimizer.WithDefaults()
		out = append(out, templates.PresetOption{
			Name: p.Name, Description: p.Description, Layers: string(layers),
			Optimizer: opt.Name, LearningRate: opt.LearningRate, BatchSize: p.BatchSize, Epochs: p.Epochs,
		})
	}
	return out
}

// sessionHTML serves a page about the session named in the path, or the
// not-found page.
func (s *Server) sessionHTML(page func(echo.Context, *sessions.Session) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, err := s.sessions.Get(c.Param("id"))
		if errors.Is(err, sessions.ErrNotFound) {
			return Render(c, http.StatusNotFound, templates.NotFoundPage(templates.NotFound{
				Page: s.page("Not found"), What: fmt.Sprintf("session %q", c.Param("id")),
			}))
		}
		if err != nil {
			return err
		}
		return page(c, sess)
	}
}

// sessionPage answers GET /sessions/:id. With ?owner=<token> it is the
// owner link the server prints: a right token sets the owner cookie and
// redirects to the clean URL (so the token leaves the address bar and the
// history); a wrong one shows the page to a viewer, with a notice.
func (s *Server) sessionPage(c echo.Context, sess *sessions.Session) error {
	var notice string
	if token := c.QueryParam("owner"); token != "" {
		if sess.IsOwner(token) {
			c.SetCookie(ownerCookie(sess.ID(), token))
			return c.Redirect(http.StatusSeeOther, "/sessions/"+sess.ID())
		}
		notice = "This owner link does not match the session, so you are watching it as a viewer."
	}
	token := ownerToken(c, sess.ID())
	owner := sess.IsOwner(token)
	_, test := s.sessions.Data()
	v := sessionView(s.page(sess.Info().Name), sess.Info(), owner, notice, test.Len())
	base := s.baseURL(c)
	v.JoinURL = base + "/sessions/" + sess.ID()
	v.PresentURL = "/sessions/" + sess.ID() + "/present"
	if owner {
		// The owner's own page carries their link, to open the session
		// with its controls on another machine (the projector's laptop, a
		// tablet). Nobody else gets this page, and nothing may keep it.
		v.TeacherLink = v.JoinURL + "?owner=" + token
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return Render(c, http.StatusOK, templates.SessionView(v))
}

// presentPage answers GET /sessions/:id/present: the projector view.
func (s *Server) presentPage(c echo.Context, sess *sessions.Session) error {
	info := sess.Info()
	_, test := s.sessions.Data()
	join := s.baseURL(c) + "/sessions/" + info.ID
	v := templates.PresentPage{
		Page: s.page(info.Name), ID: info.ID, Name: info.Name,
		Status: string(info.Status), Reason: info.StatusReason,
		Owner:  sess.IsOwner(ownerToken(c, info.ID)),
		Preset: info.Config.Preset, Architecture: architecture(info.Summary),
		Epochs: info.Config.Epochs, BatchesPerEpoch: info.BatchesPerEpoch,
		Probe: info.Probe, TestImages: test.Len(), Warning: info.Warning,
		JoinURL: join, JoinText: strings.TrimPrefix(strings.TrimPrefix(join, "http://"), "https://"),
	}
	_, v.ProgressText = progress(info)
	return Render(c, http.StatusOK, templates.PresentView(v))
}

// baseURL is the scheme and host other machines reach the server at: the
// configured share address, else the one this request came to.
func (s *Server) baseURL(c echo.Context) string {
	if s.shareURL != "" {
		return s.shareURL
	}
	return c.Scheme() + "://" + c.Request().Host
}

// sessionView builds the session page's view model from the session's Info.
func sessionView(p templates.Page, info sessions.Info, owner bool, notice string, testImages int) templates.SessionPage {
	cfg := info.Config
	v := templates.SessionPage{
		Page: p, ID: info.ID, Name: info.Name, Status: string(info.Status), Reason: info.StatusReason,
		Owner: owner, Notice: notice, Warning: info.Warning,
		Preset: cfg.Preset, Optimizer: optimizerText(cfg.Optimizer), BatchSize: cfg.BatchSize,
		Epochs: cfg.Epochs, Seed: cfg.Seed, Dropout: cfg.Dropout,
		Step: info.Step, Epoch: info.Epoch, Batch: info.Batch, BatchesPerEpoch: info.BatchesPerEpoch,
		Probe: info.Probe, TestImages: testImages,
		Summary: summaryTable(info.Summary),
	}
	v.Progress, v.ProgressText = progress(info)
	v.Architecture = architecture(info.Summary)
	base := "/api/sessions/" + info.ID + "/"
	v.Exports = []templates.Export{
		{Label: "Loss curve (SVG)", Href: base + "plots/loss.svg", Hint: "scales for slides"},
		{Label: "Loss curve (PNG)", Href: base + "plots/loss.png"},
		{Label: "Accuracy curve (SVG)", Href: base + "plots/accuracy.svg"},
		{Label: "Accuracy curve (PNG)", Href: base + "plots/accuracy.png"},
		{Label: "First-layer filters (PNG)", Href: base + "plots/filters.png", Hint: "the latest weights"},
		{Label: "Metrics (CSV)", Href: base + "plots/metrics.csv", Hint: "every batch and epoch"},
		{Label: "Checkpoint", Href: base + "checkpoint", Hint: "weights and optimiser state, saved at each epoch's end and on pause",
			Checkpoint: true, Hidden: !info.Checkpoint},
	}
	return v
}

// progress returns the share of the planned batches trained and a line
// that says where training stands. session.js writes the same line as the
// session trains.
func progress(info sessions.Info) (float64, string) {
	epochs, bpe := info.Config.Epochs, max(info.BatchesPerEpoch, 1)
	share := 0.0
	if total := epochs * bpe; total > 0 {
		share = min(float64(info.Step)/float64(total), 1)
	}
	switch {
	case info.Status == sessions.StatusCreated && info.Step == 0:
		return 0, fmt.Sprintf("not started: %s of %s", count(epochs, "epoch", "epochs"), count(bpe, "batch", "batches"))
	case info.Status == sessions.StatusFinished:
		return 1, fmt.Sprintf("done: %s trained", count(epochs, "epoch", "epochs"))
	}
	current := min(info.Epoch+1, epochs)
	return share, fmt.Sprintf("epoch %d of %d · batch %s of %s", current, epochs, engine.FormatCount(info.Batch), engine.FormatCount(bpe))
}

// count writes "1 epoch", "2 epochs", "1,250 batches".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return engine.FormatCount(n) + " " + many
}

// optimizerText describes an optimiser in a few words.
func optimizerText(o engine.OptimizerConfig) string {
	text := o.Name
	if o.LearningRate != 0 {
		text += ", learning rate " + strconv.FormatFloat(o.LearningRate, 'g', -1, 64)
	}
	if o.Momentum != 0 {
		text += ", momentum " + strconv.FormatFloat(o.Momentum, 'g', -1, 64)
	}
	return text
}

// architecture writes the layers in one line, from the image to the class
// scores.
func architecture(s engine.Summary) string {
	parts := []string{"input " + strings.ReplaceAll(s.Input.String(), "x", "×")}
	for _, l := range s.Layers {
		parts = append(parts, l.Description)
	}
	return strings.Join(parts, " → ")
}

// summaryTable formats the per-layer cost table, with the input as its
// first row as in the article's table.
func summaryTable(s engine.Summary) templates.SummaryTable {
	t := templates.SummaryTable{
		TotalActivations: engine.FormatCount(s.TotalActivations),
		TotalMemory:      engine.FormatBytes(s.TotalBytes),
		TotalWeights:     engine.FormatCount(s.TotalWeights),
		WeightsMemory:    engine.FormatBytes(4 * s.TotalWeights),
		BackwardMemory:   engine.FormatBytes(2 * s.TotalBytes),
	}
	t.Rows = append(t.Rows, templates.SummaryRow{
		Name: "input", Description: "the image", Output: s.Input.String(),
		Activations: engine.FormatCount(s.Input.Size()), Memory: engine.FormatBytes(4 * s.Input.Size()), Weights: "0",
	})
	for _, l := range s.Layers {
		formula, _, _ := strings.Cut(l.WeightsText, " = ")
		if l.Weights == 0 || formula == l.WeightsText {
			formula = ""
		}
		t.Rows = append(t.Rows, templates.SummaryRow{
			Name: l.Name, Description: l.Description, Output: l.OutputText,
			Activations: engine.FormatCount(l.Activations), Memory: engine.FormatBytes(l.Bytes),
			Weights: engine.FormatCount(l.Weights), Formula: formula,
		})
	}
	return t
}

// percent formats an accuracy in [0, 1] as "98.12%"; "" for none.
func percent(acc *float64) string {
	if acc == nil || math.IsNaN(*acc) {
		return ""
	}
	return strconv.FormatFloat(100**acc, 'f', 2, 64) + "%"
}
