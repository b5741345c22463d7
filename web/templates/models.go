// Package templates holds cnnviz's pages as templ components, and the view
// models they take. The view models are plain data, already formatted for
// people: the web package builds them from sessions and engine values, so
// these templates import nothing of the project and can be rendered in a
// test from literals.
package templates

// Page is what every page's layout needs.
type Page struct {
	Title     string // the document title, before " · cnnviz"
	AssetBase string // where the static files are served, ending in "/" ("/static/1a2b3c/")
}

// Asset returns the URL of a static file, such as "js/home.js".
func (p Page) Asset(path string) string { return p.AssetBase + path }

// Home is the home page: the sessions, the form that creates one and the
// drawing canvas against the best model.
type Home struct {
	Page
	Sessions []SessionRow
	// Model is the session the drawing canvas asks; nil when there is no
	// session yet.
	Model *ModelRef
	// Presets feeds the form: the choices, and the defaults each one
	// brings (sent to the page's script as JSON).
	Presets      []PresetOption
	Optimizers   []string
	MaxEpochs    int
	MaxBatchSize int
}

// SessionRow is one session in the home page's list.
type SessionRow struct {
	ID      string
	Name    string
	Preset  string
	Status  string
	Reason  string // why the status is what it is, if known
	Epoch   int    // epochs completed
	Epochs  int    // epochs planned
	TestAcc string // "98.12%", or "" before the first evaluation
	// Loss is the training loss, downsampled for the sparkline, as a JSON
	// array; Seq is the last stream sequence number it includes, from
	// which the page fetches what follows.
	Loss string
	Seq  uint64
}

// ModelRef names the model the home page's drawing canvas asks.
type ModelRef struct {
	ID      string
	Name    string
	Status  string
	TestAcc string // "" before the first evaluation
}

// PresetOption is one preset in the form.
type PresetOption struct {
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	Layers       string  `json:"layers"` // the layer list as indented JSON, to start a custom model from
	Optimizer    string  `json:"optimizer"`
	LearningRate float64 `json:"learningRate"`
	BatchSize    int     `json:"batchSize"`
	Epochs       int     `json:"epochs"`
}

// SessionPage is a session's page.
type SessionPage struct {
	Page
	ID     string
	Name   string
	Status string
	Reason string
	// Owner says whether the viewer holds the session's owner token: only
	// then are the controls shown.
	Owner bool
	// Notice is a short message for the viewer, such as a wrong owner link.
	Notice string
	// Warning is a problem training goes on despite, such as a checkpoint
	// that could not be written; session.js keeps it up to date.
	Warning string

	Preset       string
	Optimizer    string // "adam, learning rate 0.002"
	BatchSize    int
	Epochs       int
	Seed         uint64
	Dropout      bool
	Architecture string // "conv 3x3x8 → pool 2 → …"

	Step            int64
	Epoch           int // epochs completed
	Batch           int
	BatchesPerEpoch int
	Progress        float64 // share of the planned batches trained, 0..1
	ProgressText    string  // "epoch 2 of 5 · batch 40 of 125"
	Probe           int     // the test image whose activation maps are shown
	TestImages      int     // how many test images there are, for the probe picker

	Summary SummaryTable
	Exports []Export

	// JoinURL is the page's address as other machines reach it;
	// PresentURL the projector view; TeacherLink, for the owner only, the
	// page's address with the owner token, which gives the controls to
	// whoever opens it.
	JoinURL     string
	PresentURL  string
	TeacherLink string
}

// SummaryTable is the per-layer cost table, the kind the article prints for
// VGG-16, formatted.
type SummaryTable struct {
	Rows             []SummaryRow
	TotalActivations string // "10,290"
	TotalMemory      string // "40.2 KB"
	TotalWeights     string // "5,258"
	WeightsMemory    string // the weights as float32: "20.5 KB"
	BackwardMemory   string // about twice the forward memory
}

// SummaryRow is one layer of the cost table.
type SummaryRow struct {
	Name        string // "conv1"
	Description string // "CONV3-8 relu"
	Output      string // "26x26x8"
	Activations string // "5,408"
	Memory      string // "21.1 KB"
	Weights     string // "80"
	Formula     string // "(3*3*1)*8 + 8", empty when it adds nothing
}

// Export is a download offered on the session page.
type Export struct {
	Label string
	Href  string
	Hint  string
	// Checkpoint marks the checkpoint link, which the page shows only
	// once the session has one; Hidden says it has none yet.
	Checkpoint bool
	Hidden     bool
}

// NotFound is the page for a session that does not exist.
type NotFound struct {
	Page
	What string // "session 1a2b3c"
}

// Shows reports whether the control for action is shown at first: start,
// pause and resume share one place, and only the one that applies is
// visible. The page's script keeps this up to date as the status changes.
func (v SessionPage) Shows(action string) bool {
	switch action {
	case "start":
		return v.Status == "created"
	case "pause":
		return v.Status == "running" || v.Status == "queued"
	case "resume":
		return v.Status == "paused"
	}
	return true
}

// Allows reports whether the control for action is enabled at first.
func (v SessionPage) Allows(action string) bool {
	final := v.Status == "finished" || v.Status == "stopped" || v.Status == "diverged" || v.Status == "failed"
	switch action {
	case "step":
		return v.Status == "paused" || v.Status == "created"
	case "stop":
		return !final
	}
	return v.Shows(action)
}

// PresentPage is a session's projector view: the curves, the filters and
// the probe image's maps, large, on one screen, with the address students
// join at.
type PresentPage struct {
	Page
	ID     string
	Name   string
	Status string
	Reason string
	// Owner turns on the keyboard controls (space pauses or resumes, the
	// arrow keys change the probe image).
	Owner           bool
	Preset          string
	Architecture    string
	Epochs          int
	BatchesPerEpoch int
	ProgressText    string
	Probe           int
	TestImages      int
	Warning         string // as on the session page
	// JoinURL is the session page's address as students' machines reach
	// it; JoinText is the same without the scheme, for reading aloud.
	JoinURL  string
	JoinText string
}
