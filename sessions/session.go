package sessions

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"cnnviz/engine"
	"cnnviz/stream"
)

// Session is one model being trained (or trained already) with its history.
// A single runner goroutine owns the model while the session trains or is
// paused; everything else sees the session through its record (under mu)
// and through weight snapshots (for predictions).
type Session struct {
	m     *Manager
	id    string
	topic *stream.Topic

	summary engine.Summary // per-layer costs, fixed by the spec

	mu     sync.Mutex
	rec    Record
	runner *runner // nil when no goroutine owns the model

	weights         atomic.Pointer[weightSet]
	predictors      sync.Pool // *predictor, each used by one caller at a time
	deleted         atomic.Bool
	framesPublished atomic.Bool
	// resumedAfterRestart marks a session that was training when the
	// server stopped: its runner tells viewers where training resumes.
	resumedAfterRestart bool
	// checkpointWarning says why the last checkpoint could not be
	// written, until one is; "" when checkpoints work (guarded by mu).
	checkpointWarning string
}

// weightSet is an immutable copy of a model's parameters, published by the
// runner. Predictions copy it into a model of their own, so they never see
// weights half-way through an update.
type weightSet struct {
	version int64 // the training step it was taken at; -1 for the initial weights
	values  [][]float32
}

// ID is the session's identifier.
func (s *Session) ID() string { return s.id }

// Topic is the session's stream topic.
func (s *Session) Topic() *stream.Topic { return s.topic }

// IsOwner reports, in constant time, whether token is the session's owner
// token.
func (s *Session) IsOwner(token string) bool {
	if token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	s.mu.Lock()
	want := s.rec.OwnerHash
	s.mu.Unlock()
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

// Record returns a copy of the session's record.
func (s *Session) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	r.Epochs = append([]EpochResult(nil), r.Epochs...)
	return r
}

// Action is a control request from the session's owner.
type Action string

// The actions Control accepts.
const (
	ActionStart  Action = "start"
	ActionPause  Action = "pause"
	ActionResume Action = "resume"
	ActionStep   Action = "step"
	ActionStop   Action = "stop"
)

// ErrConflict is an action that the session's status does not allow, such
// as pausing a finished session.
var ErrConflict = errors.New("not allowed now")

// Control applies an owner's action. Start and resume begin or continue
// training (queued while every slot is busy), pause takes effect after the
// batch in progress, step trains one batch while paused, stop ends training
// for good. Each returns once the runner has accepted the action.
func (s *Session) Control(a Action) error {
	if s.deleted.Load() {
		return ErrNotFound
	}
	s.mu.Lock()
	status, r := s.rec.Status, s.runner
	s.mu.Unlock()
	switch a {
	case ActionStart, ActionResume, ActionStep:
		if status.final() {
			return fmt.Errorf("%w: the session is %s", ErrConflict, status)
		}
		if a == ActionStep && status != StatusPaused && status != StatusCreated {
			return fmt.Errorf("%w: step needs a paused session, this one is %s", ErrConflict, status)
		}
		if r == nil {
			var err error
			if r, err = s.startRunner(); err != nil {
				return err
			}
		}
		return r.send(a)
	case ActionPause:
		if r == nil || !(status == StatusRunning || status == StatusQueued) {
			return fmt.Errorf("%w: pause needs a running session, this one is %s", ErrConflict, status)
		}
		return r.send(a)
	case ActionStop:
		if status.final() {
			return fmt.Errorf("%w: the session is already %s", ErrConflict, status)
		}
		if r == nil {
			s.setStatus(StatusStopped, "stopped by its owner")
			return nil
		}
		return r.send(a)
	}
	return fmt.Errorf("unknown action %q (want start, pause, resume, step or stop)", a)
}

// startRunner loads the model (from its checkpoint, or fresh from the seed)
// and starts the goroutine that owns it, paused. It is called with s.mu
// unlocked.
func (s *Session) startRunner() (*runner, error) {
	s.mu.Lock()
	if s.runner != nil { // another request got here first
		r := s.runner
		s.mu.Unlock()
		return r, nil
	}
	s.mu.Unlock()
	model, opt, trainer, err := s.load()
	if err != nil {
		return nil, err
	}
	r := newRunner(s, model, opt, trainer)
	s.mu.Lock()
	if s.runner != nil {
		s.mu.Unlock()
		return s.runner, nil
	}
	s.runner = r
	s.mu.Unlock()
	s.m.wg.Add(1)
	go func() {
		defer s.m.wg.Done()
		r.run(s.m.ctx)
	}()
	return r, nil
}

// loadModel rebuilds the session's model from its checkpoint, with the
// optimiser and position saved there, or from its seed when it has none
// (then opt is nil and st the zero position).
func (s *Session) loadModel() (model *engine.Model, opt engine.Optimizer, st engine.TrainState, err error) {
	if s.hasCheckpoint() {
		model, opt, st, err = engine.LoadCheckpoint(s.m.store.CheckpointPath(s.id))
		if err != nil {
			return nil, nil, st, fmt.Errorf("session %s: %w", s.id, err)
		}
		return model, opt, st, nil
	}
	cfg := s.Record().Config
	model, err = engine.Build(cfg.Spec, cfg.Seed)
	return model, nil, st, err
}

// load rebuilds the session's model and optimiser and a trainer positioned
// where its checkpoint left off.
func (s *Session) load() (*engine.Model, engine.Optimizer, *engine.Trainer, error) {
	model, opt, st, err := s.loadModel()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := s.Record().Config
	if opt == nil {
		if opt, err = engine.NewOptimizer(cfg.Optimizer); err != nil {
			return nil, nil, nil, err
		}
	}
	tr := engine.NewTrainer(model, opt, s.m.opts.Train, cfg.BatchSize, cfg.Epochs)
	tr.Seek(st.Epoch, st.Batch)
	return model, opt, tr, nil
}

// hasCheckpoint reports whether the session's checkpoint file exists. The
// file, not the record, is the truth: the record is written after the
// checkpoint, so a crash between the two leaves a record one checkpoint
// behind.
func (s *Session) hasCheckpoint() bool {
	_, err := os.Stat(s.m.store.CheckpointPath(s.id))
	return err == nil
}

// setStatus records a status change, stores it and announces it.
func (s *Session) setStatus(st Status, reason string) {
	s.mu.Lock()
	if s.rec.Status == st && s.rec.StatusReason == reason {
		s.mu.Unlock()
		return
	}
	s.rec.Status, s.rec.StatusReason = st, reason
	s.rec.Updated = time.Now().UTC()
	seq := s.nextSeqLocked()
	step, epoch := s.rec.Step, s.rec.Epoch
	s.mu.Unlock()
	s.publishEvent("status", seq, StatusEvent{Status: st, Reason: reason, Step: step, Epoch: epoch})
	s.saveRecord()
	// A status change must survive a crash that follows it (a paused
	// session must not resume training after a restart): wait for it to
	// be committed. Status changes are rare; this costs one fsync each.
	if !s.deleted.Load() {
		if err := s.m.persist.sync(); err != nil {
			s.m.log.Error("storing a status change", "session", s.id, "err", err)
		}
	}
}

// nextSeqLocked hands out the next stream sequence number; s.mu is held.
func (s *Session) nextSeqLocked() uint64 {
	s.rec.Seq++
	return s.rec.Seq
}

func (s *Session) nextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextSeqLocked()
}

// publishEvent sends a durable message to viewers and stores it.
func (s *Session) publishEvent(typ string, seq uint64, payload any) {
	msg, err := stream.JSON(typ, s.id, seq, payload)
	if err != nil {
		s.m.log.Error("encoding event", "session", s.id, "type", typ, "err", err)
		return
	}
	s.topic.Publish(msg)
	if !s.deleted.Load() {
		s.m.persist.put(write{id: s.id, seq: seq, event: msg.Data})
	}
	if typ == "status" || typ == "epoch" || typ == "notice" {
		s.publishState()
	}
}

// publishState sends the session's current Info as a latest-wins message,
// so a viewer always has the status line, progress and summary.
func (s *Session) publishState() {
	info := s.Info()
	msg, err := stream.JSON("state", s.id, info.Seq, info)
	if err != nil {
		return
	}
	s.topic.PublishLatest("state", msg)
}

// saveRecord queues the record for the store.
func (s *Session) saveRecord() {
	if s.deleted.Load() {
		return
	}
	s.mu.Lock()
	r := s.rec
	r.Epochs = append([]EpochResult(nil), r.Epochs...)
	s.mu.Unlock()
	s.m.persist.put(write{record: &r})
}

// StatusEvent is the payload of a "status" message.
type StatusEvent struct {
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	Step   int64  `json:"step"`
	Epoch  int    `json:"epoch"`
}

// MetricPoint is one training batch's loss and accuracy.
type MetricPoint struct {
	Step  int64   `json:"step"`  // 1-based count of batches trained
	Epoch int     `json:"epoch"` // 1-based
	Loss  float32 `json:"loss"`
	Acc   float32 `json:"acc"`
}

// MetricsEvent is the payload of a "metrics" message: every batch since the
// previous one, coalesced so viewers get at most ~10 messages a second.
type MetricsEvent struct {
	Points       []MetricPoint `json:"points"`
	ImagesPerSec float64       `json:"imagesPerSec"`
	Batch        int           `json:"batch"` // batches of the current epoch done
	Epoch        int           `json:"epoch"` // epochs completed
}

// EpochEvent is the payload of an "epoch" message: the epoch's results and,
// from the test set, the confusion matrix and some of the mistakes.
type EpochEvent struct {
	EpochResult
	Confusion [engine.Classes][engine.Classes]int `json:"confusion"` // [true label][predicted]
	Mistakes  []Mistake                           `json:"mistakes"`
}

// Mistake is a test image the model gets wrong.
type Mistake struct {
	Index     int   `json:"index"` // in the test set
	Label     uint8 `json:"label"`
	Predicted uint8 `json:"predicted"`
}

// RewindEvent tells viewers to forget points after Step: training resumed
// from a checkpoint older than the latest points (after a crash).
type RewindEvent struct {
	Step   int64  `json:"step"`
	Reason string `json:"reason"`
}

// predictSlots bounds the predictor models in use at once, in the whole
// process, to the number of cores. A prediction is CPU-bound, so more at
// once would answer no sooner, but each one in flight holds a model of its
// own (about 10 MB for keras-mnist) that then stays in the session's pool:
// without the bound the pools grew with the number of drawing clients
// (nine models for twenty clients in the classroom load test on a busy
// machine). Waiting callers queue here, each with its drawing only.
var predictSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// predictor returns a model with the latest published weights, for the
// exclusive use of one caller until it calls release. It waits while
// predictSlots are all taken.
func (s *Session) predictor() (model *engine.Model, release func(), err error) {
	predictSlots <- struct{}{}
	defer func() {
		if err != nil {
			<-predictSlots
		}
	}()
	ws := s.weights.Load()
	if ws == nil {
		if ws, err = s.initialWeights(); err != nil {
			return nil, nil, err
		}
	}
	p, _ := s.predictors.Get().(*predictor)
	if p == nil {
		m, err := engine.Build(s.Record().Config.Spec, 0)
		if err != nil {
			return nil, nil, err
		}
		p = &predictor{model: m, version: -2}
	}
	if p.version != ws.version || p.set != ws {
		for i, param := range p.model.Params() {
			copy(param.Value, ws.values[i])
		}
		p.version, p.set = ws.version, ws
	}
	return p.model, func() {
		s.predictors.Put(p)
		<-predictSlots
	}, nil
}

type predictor struct {
	model   *engine.Model
	version int64
	set     *weightSet
}

// initialWeights loads the weights of a session that has no runner: from
// its checkpoint, or rebuilt from its seed.
func (s *Session) initialWeights() (*weightSet, error) {
	model, _, _, err := s.loadModel()
	if err != nil {
		return nil, err
	}
	rec := s.Record()
	ws := snapshotWeights(model, rec.Step)
	if !s.weights.CompareAndSwap(nil, ws) {
		return s.weights.Load(), nil
	}
	return ws, nil
}

func snapshotWeights(m *engine.Model, step int64) *weightSet {
	ws := &weightSet{version: step}
	for _, p := range m.Params() {
		ws.values = append(ws.values, append([]float32(nil), p.Value...))
	}
	return ws
}

// stopRunner asks the runner to checkpoint and exit, and waits. Used on
// shutdown and delete; the status stays what it was.
func (s *Session) stopRunner(ctx context.Context) {
	s.mu.Lock()
	r := s.runner
	s.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case r.cmds <- command{action: actionExit, reply: make(chan error, 1)}:
	case <-r.done:
	case <-ctx.Done():
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// SetProbe chooses the test image whose activation maps viewers see, and
// republishes them.
func (s *Session) SetProbe(i int) error {
	if n := s.m.opts.Test.Len(); i < 0 || i >= n {
		return &FieldError{"index", fmt.Sprintf("%d is not a test image (want 0..%d)", i, n-1)}
	}
	s.mu.Lock()
	s.rec.Probe = i
	r := s.runner
	s.mu.Unlock()
	s.saveRecord()
	s.publishState()
	if r != nil && r.send(actionRefresh) == nil {
		return nil
	}
	return s.publishIdleFrames()
}

// EnsureFrames publishes the filters and activation maps of a session that
// is not training, if nothing has published them yet (after a restart), so
// that a new viewer sees them.
func (s *Session) EnsureFrames() error {
	if s.framesPublished.Load() {
		return nil
	}
	s.mu.Lock()
	r := s.runner
	s.mu.Unlock()
	if r != nil {
		return r.send(actionRefresh)
	}
	return s.publishIdleFrames()
}

// publishIdleFrames renders the frames from the published weights, for a
// session without a runner.
func (s *Session) publishIdleFrames() error {
	model, release, err := s.predictor()
	if err != nil {
		return err
	}
	defer release()
	step := s.Record().Step
	filters, acts := s.frames(model, step)
	s.publishFrame("filters", filters)
	s.publishFrame("activations", acts)
	return nil
}

// Metrics reads the session's per-batch points and epoch results back from
// its stored history, applying rewinds, in step order.
func (s *Session) Metrics() ([]MetricPoint, []EpochResult, error) {
	if err := s.m.Sync(); err != nil {
		return nil, nil, err
	}
	events, err := s.m.store.Events(s.id, 0)
	if err != nil {
		return nil, nil, err
	}
	var (
		points []MetricPoint
		epochs []EpochResult
	)
	for _, e := range events {
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(e.Data, &env); err != nil {
			return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
		}
		switch env.Type {
		case "metrics":
			var m MetricsEvent
			if err := json.Unmarshal(env.Data, &m); err != nil {
				return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			points = append(points, m.Points...)
		case "epoch":
			var ep EpochResult
			if err := json.Unmarshal(env.Data, &ep); err != nil {
				return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			epochs = append(epochs, ep)
		case "rewind":
			var rw RewindEvent
			if err := json.Unmarshal(env.Data, &rw); err != nil {
				return nil, nil, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			for len(points) > 0 && points[len(points)-1].Step > rw.Step {
				points = points[:len(points)-1]
			}
			for len(epochs) > 0 && epochs[len(epochs)-1].Step > rw.Step {
				epochs = epochs[:len(epochs)-1]
			}
		}
	}
	return points, epochs, nil
}
