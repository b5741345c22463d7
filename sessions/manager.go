// Package sessions runs training sessions: it validates settings, trains
// each running session in a goroutine of its own, publishes what the model
// learns to the session's stream topic, keeps the history and checkpoints
// in an embedded store, and brings every session back after a restart.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"time"

	"cnnviz/engine"
	"cnnviz/engine/checkpoint"
	"cnnviz/engine/mnist"
	"cnnviz/stream"
)

// Options configures a Manager.
type Options struct {
	Dir             string        // data folder for the store and checkpoints
	Hub             *stream.Hub   // where sessions publish
	Train, Test     *mnist.Set    // the data set
	MaxRunning      int           // sessions training at once; default one per CPU
	PublishInterval time.Duration // images and prediction weights; default 200ms
	MetricsInterval time.Duration // coalescing of per-batch metrics; default 100ms
	Snapshots       int           // snapshots kept per session over a whole run; default 3000
	MaxModelBytes   int64         // refuse models whose training step would need more; default 2 GiB
	Log             *slog.Logger
}

// Manager owns every session.
type Manager struct {
	opts    Options
	store   *Store
	persist *persister
	log     *slog.Logger
	slots   chan struct{} // a token per training session

	ctx    context.Context // cancelled by Close: runners checkpoint and exit
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*Session
}

// Open opens the store in opts.Dir, loads every session, and resumes those
// that were training when the server last stopped (from their last
// checkpoint).
func Open(opts Options) (*Manager, error) {
	if opts.Hub == nil || opts.Train == nil || opts.Test == nil {
		return nil, errors.New("sessions: Open needs a hub and a data set")
	}
	if opts.MaxRunning <= 0 {
		opts.MaxRunning = runtime.NumCPU()
	}
	if opts.PublishInterval <= 0 {
		opts.PublishInterval = 200 * time.Millisecond
	}
	if opts.MetricsInterval <= 0 {
		opts.MetricsInterval = 100 * time.Millisecond
	}
	if opts.Snapshots <= 0 {
		opts.Snapshots = 3000
	}
	if opts.MaxModelBytes <= 0 {
		opts.MaxModelBytes = 2 << 30
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	store, err := OpenStore(opts.Dir)
	if err != nil {
		return nil, err
	}
	// A kill -9 during a checkpoint write leaves the write's temporary
	// file, as large as a checkpoint, that nothing would ever remove. The
	// store's lock, now held, means no other process is writing there.
	removed, err := checkpoint.RemoveTemps(store.checkpointDir())
	if err != nil {
		opts.Log.Error("removing unfinished checkpoint files", "err", err)
	}
	if len(removed) > 0 {
		opts.Log.Info("removed unfinished checkpoint files from an interrupted run", "files", removed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts: opts, store: store, log: opts.Log,
		persist: newPersister(store, opts.Log),
		slots:   make(chan struct{}, opts.MaxRunning),
		ctx:     ctx, cancel: cancel,
		sessions: map[string]*Session{},
	}
	records, err := store.Records()
	if err != nil {
		m.log.Error("some sessions could not be read", "err", err)
	}
	for _, rec := range records {
		s, err := m.restore(rec)
		if err != nil {
			m.log.Error("session not restored", "session", rec.ID, "err", err)
			continue
		}
		if rec.Status.wantsTraining() {
			if err := s.Control(ActionResume); err != nil {
				// Most likely an unreadable checkpoint. The file and the
				// history stay as they are; the status says why nothing
				// trains, instead of "running" forever.
				m.log.Error("session not resumed", "session", rec.ID, "err", err)
				s.setStatus(StatusFailed, "could not resume: "+checkpointReason(err, m.store.CheckpointPath(rec.ID)))
			}
		}
	}
	return m, nil
}

// restore brings a stored session back: its record, and its event history
// into the stream topic so that viewers get it on connect.
func (m *Manager) restore(rec *Record) (*Session, error) {
	events, err := m.store.Events(rec.ID, 0)
	if err != nil {
		return nil, err
	}
	s := m.newSession(*rec)
	msgs := make([]*stream.Message, 0, len(events))
	for _, e := range events {
		msg, err := stream.NewText(e.Seq, e.Data)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, msg)
		s.rec.Seq = max(s.rec.Seq, e.Seq)
	}
	s.topic.Preload(msgs)
	// The record is stored at status changes and epoch ends, the metrics
	// as they come: after a crash the history may reach further than the
	// record, and the runner must rewind from there.
	if step := lastMetricStep(events); step > s.rec.Step {
		s.rec.Step = step
	}
	// Messages published after the last commit may have reached viewers
	// before a crash; skipping the sequence ahead keeps every new message
	// above anything a reconnecting viewer saw (gaps are allowed).
	s.rec.Seq += 1000
	s.resumedAfterRestart = rec.Status.wantsTraining()
	s.checkpointWarning = activeWarning(events)
	s.publishState()
	return s, nil
}

// lastMetricStep returns the step of the last metric point in events.
func lastMetricStep(events []Event) int64 {
	for i := len(events) - 1; i >= 0; i-- {
		var env struct {
			Type string       `json:"type"`
			Data MetricsEvent `json:"data"`
		}
		if json.Unmarshal(events[i].Data, &env) == nil && env.Type == "metrics" && len(env.Data.Points) > 0 {
			return env.Data.Points[len(env.Data.Points)-1].Step
		}
	}
	return 0
}

func (m *Manager) newSession(rec Record) *Session {
	s := &Session{m: m, id: rec.ID, rec: rec, topic: m.opts.Hub.Topic(rec.ID)}
	if model, err := engine.Build(rec.Config.Spec, 0); err == nil {
		s.summary = engine.Summarize(model)
	}
	m.mu.Lock()
	m.sessions[rec.ID] = s
	m.mu.Unlock()
	return s
}

// Create validates settings and stores a new session, not yet started. It
// returns the session and its owner token, which is not stored and cannot
// be recovered.
func (m *Manager) Create(settings Settings) (*Session, string, error) {
	cfg, err := settings.Resolve()
	if err != nil {
		return nil, "", err
	}
	model, err := engine.Build(cfg.Spec, cfg.Seed)
	if err != nil {
		return nil, "", &FieldError{"layers", err.Error()}
	}
	if need := engine.TrainingBytes(model, cfg.BatchSize); need > m.opts.MaxModelBytes {
		return nil, "", &FieldError{"layers", fmt.Sprintf("training this model at batch size %d needs about %d MB, more than the server allows (%d MB); use fewer or smaller layers, or a smaller batch",
			cfg.BatchSize, need>>20, m.opts.MaxModelBytes>>20)}
	}
	if m.ctx.Err() != nil {
		return nil, "", errors.New("sessions: shutting down")
	}
	id, token := randomID(), randomToken()
	sum := sha256.Sum256([]byte(token))
	bpe := (m.opts.Train.Len() + cfg.BatchSize - 1) / cfg.BatchSize
	total := bpe * cfg.Epochs
	now := time.Now().UTC()
	rec := Record{
		ID: id, Settings: settings, Config: cfg, Status: StatusCreated,
		OwnerHash: sum[:], Created: now, Updated: now,
		BatchesPerEpoch: bpe, CheckpointStep: -1,
		SnapshotEvery: max(1, (total+m.opts.Snapshots-1)/m.opts.Snapshots),
	}
	s := m.newSession(rec)
	s.saveRecord()
	if err := m.persist.sync(); err != nil {
		m.Delete(id)
		return nil, "", fmt.Errorf("sessions: storing the new session: %w", err)
	}
	s.publishState()
	return s, token, nil
}

// Get returns the session with the given id.
func (m *Manager) Get(id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	return s, nil
}

// List returns every session's Info, newest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(all))
	for _, s := range all {
		out = append(out, s.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Delete stops a session's training, closes its viewers and removes it and
// everything stored about it.
func (m *Manager) Delete(id string) error {
	s, err := m.Get(id)
	if err != nil {
		return err
	}
	s.deleted.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.stopRunner(ctx)
	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
	m.opts.Hub.Remove(id)
	if err := m.persist.sync(); err != nil {
		return err
	}
	return m.store.Delete(id)
}

// Close stops every runner (each checkpoints where it stands, keeping its
// status so that it resumes on the next start), then flushes and closes the
// store.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	err := m.persist.close()
	return errors.Join(err, m.store.Close())
}

// Sync commits every queued write to the store, so that reads of the
// store see everything published so far.
func (m *Manager) Sync() error { return m.persist.sync() }

// Store gives read access to the store (history, snapshots, checkpoints).
func (m *Manager) Store() *Store { return m.store }

// Data returns the data set sessions train on.
func (m *Manager) Data() (train, test *mnist.Set) { return m.opts.Train, m.opts.Test }

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Info is a session as the API shows it.
type Info struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Status          Status         `json:"status"`
	StatusReason    string         `json:"statusReason,omitempty"`
	Config          Config         `json:"config"`
	Created         time.Time      `json:"created"`
	Updated         time.Time      `json:"updated"`
	Step            int64          `json:"step"`
	Epoch           int            `json:"epoch"`
	Batch           int            `json:"batch"`
	BatchesPerEpoch int            `json:"batchesPerEpoch"`
	ImagesPerSec    float64        `json:"imagesPerSec"`
	Epochs          []EpochResult  `json:"epochs"`
	TestAcc         *float64       `json:"testAcc,omitempty"` // the last epoch's
	Checkpoint      bool           `json:"checkpoint"`
	Warning         string         `json:"warning,omitempty"` // a checkpoint that failed, until one succeeds
	Seq             uint64         `json:"seq"`
	Probe           int            `json:"probe"`
	SnapshotEvery   int            `json:"snapshotEvery"`
	Viewers         int            `json:"viewers"`
	Summary         engine.Summary `json:"summary"`
	// From the last evaluation on the test set.
	Confusion [engine.Classes][engine.Classes]int `json:"confusion"` // [true label][predicted]
	Mistakes  []Mistake                           `json:"mistakes"`
}

// Info describes the session for the API and the "state" message.
func (s *Session) Info() Info {
	rec := s.Record()
	info := Info{
		ID: rec.ID, Name: rec.Config.Name, Status: rec.Status, StatusReason: rec.StatusReason,
		Config: rec.Config, Created: rec.Created, Updated: rec.Updated,
		Step: rec.Step, Epoch: rec.Epoch, Batch: rec.Batch, BatchesPerEpoch: rec.BatchesPerEpoch,
		ImagesPerSec: rec.ImagesPerSec, Epochs: rec.Epochs, Checkpoint: rec.CheckpointStep >= 0,
		Seq: rec.Seq, Probe: rec.Probe, SnapshotEvery: rec.SnapshotEvery, Viewers: s.topic.Clients(),
	}
	if info.Epochs == nil {
		info.Epochs = []EpochResult{}
	}
	if n := len(rec.Epochs); n > 0 {
		acc := rec.Epochs[n-1].TestAcc
		info.TestAcc = &acc
	}
	s.mu.Lock()
	info.Warning = s.checkpointWarning
	s.mu.Unlock()
	info.Summary = s.summary
	info.Confusion, info.Mistakes = rec.Confusion, rec.Mistakes
	if info.Mistakes == nil {
		info.Mistakes = []Mistake{}
	}
	return info
}
