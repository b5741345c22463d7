package sessions

import (
	"context"
	"fmt"
	"math"
	"time"

	"cnnviz/engine"
)

// runner is the goroutine that owns a session's model, optimiser and
// trainer. It trains between commands, so pause and stop take effect after
// the batch in progress, and it is the only code that touches the model.
type runner struct {
	s       *Session
	model   *engine.Model
	opt     engine.Optimizer
	trainer *engine.Trainer
	cmds    chan command
	done    chan struct{}

	running bool // training (or waiting for a slot), as opposed to paused
	hasSlot bool

	pending         []MetricPoint // batches not yet published
	lastMetrics     time.Time
	lastImages      time.Time
	lastActivations time.Time
	speedImages     int
	speedSince      time.Time
	imagesPerSec    float64

	epochLoss, epochCorrect, epochSeen float64
	epochTime                          time.Duration // time spent training this epoch
	lastCheckpointStep                 int64
	kept                               *position // the checkpoint on disk; nil: none
}

type command struct {
	action Action
	reply  chan error
}

// Internal actions, not accepted from users.
const (
	actionExit    Action = "exit"    // checkpoint and leave, status unchanged (shutdown, delete)
	actionRefresh Action = "refresh" // republish the probe's activation maps
)

func newRunner(s *Session, model *engine.Model, opt engine.Optimizer, tr *engine.Trainer) *runner {
	r := &runner{
		s: s, model: model, opt: opt, trainer: tr,
		cmds: make(chan command), done: make(chan struct{}),
		lastCheckpointStep: tr.StepCount(),
	}
	if s.hasCheckpoint() { // the trainer starts where it left off
		epoch, batch := tr.Position()
		r.kept = &position{epoch: epoch, batch: batch, step: tr.StepCount()}
	}
	return r
}

// send hands the runner a command and waits for it to be applied.
func (r *runner) send(a Action) error {
	c := command{action: a, reply: make(chan error, 1)}
	select {
	case r.cmds <- c:
	case <-r.done:
		return fmt.Errorf("%w: the session is %s", ErrConflict, r.s.Record().Status)
	}
	select {
	case err := <-c.reply:
		return err
	case <-r.done:
		return nil
	}
}

func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	defer r.detach()
	r.rewindIfBehind()
	r.publishImages(time.Now(), true)
	for {
		// A paused runner waits for a command; a running one without a
		// training slot waits for a command or a slot (showing "queued" if
		// none is free at once); a running one with a slot only checks for
		// a command between batches.
		var slot chan<- struct{} // nil, and so never ready, unless wanted
		wait := !r.running
		if r.running && !r.hasSlot {
			slot = r.s.m.slots
			select {
			case slot <- struct{}{}:
				r.gotSlot()
				continue
			default:
			}
			r.s.setStatus(StatusQueued, "waiting for a free training slot")
			wait = true
		}
		if wait {
			select {
			case slot <- struct{}{}:
				r.gotSlot()
			case c := <-r.cmds:
				if r.handle(c) {
					return
				}
			case <-ctx.Done():
				r.shutdown()
				return
			}
			continue
		}
		select {
		case c := <-r.cmds:
			if r.handle(c) {
				return
			}
			continue
		case <-ctx.Done():
			r.shutdown()
			return
		default:
		}
		if r.trainOne() {
			return
		}
	}
}

// gotSlot starts training after a slot was taken.
func (r *runner) gotSlot() {
	r.hasSlot = true
	r.speedSince, r.speedImages = time.Now(), 0
	r.s.setStatus(StatusRunning, "")
}

// shutdown publishes what is pending and checkpoints, for a server that
// is stopping; the status stays, so the session resumes on the next start.
func (r *runner) shutdown() {
	r.flushMetrics(time.Now())
	r.checkpointIfNeeded()
}

// handle applies a command and reports whether the runner should exit.
func (r *runner) handle(c command) (exit bool) {
	var err error
	switch c.action {
	case ActionStart, ActionResume:
		r.running = true
	case ActionPause:
		r.running = false
		r.releaseSlot()
		r.flushMetrics(time.Now())
		r.publishImages(time.Now(), true)
		r.checkpointIfNeeded()
		r.s.setStatus(StatusPaused, "paused by its owner")
	case ActionStep:
		if r.running {
			err = fmt.Errorf("%w: step needs a paused session", ErrConflict)
			break
		}
		exit = r.trainOne()
		r.flushMetrics(time.Now())
		r.publishImages(time.Now(), true)
		if !exit {
			r.s.setStatus(StatusPaused, "stepped one batch")
		}
	case ActionStop:
		r.flushMetrics(time.Now())
		r.checkpointIfNeeded()
		r.s.setStatus(StatusStopped, "stopped by its owner")
		exit = true
	case actionExit:
		r.flushMetrics(time.Now())
		if !r.s.deleted.Load() {
			r.checkpointIfNeeded()
		}
		exit = true
	case actionRefresh:
		r.publishImages(time.Now(), true)
	}
	c.reply <- err
	return exit
}

// trainOne trains one batch and does what its position calls for:
// publishing metrics and images when due, a snapshot every SnapshotEvery
// batches, evaluation and a checkpoint at the epoch's end. It reports
// whether training is over.
func (r *runner) trainOne() (over bool) {
	if r.trainer.Done() {
		// A server killed after the last checkpoint but before the
		// status change was stored resumes here with nothing to train.
		r.finish()
		return true
	}
	start := time.Now()
	res := r.trainer.Step()
	now := time.Now()
	r.epochTime += now.Sub(start)
	step := r.trainer.StepCount()
	if math.IsNaN(float64(res.Loss)) || math.IsInf(float64(res.Loss), 0) {
		r.flushMetrics(now)
		r.s.setStatus(StatusDiverged, fmt.Sprintf("loss became %v at batch %d", res.Loss, step))
		return true
	}
	r.epochLoss += float64(res.Loss) * float64(res.Images)
	r.epochCorrect += float64(res.Correct)
	r.epochSeen += float64(res.Images)
	r.speedImages += res.Images
	r.pending = append(r.pending, MetricPoint{
		Step: step, Epoch: res.Epoch + 1, Loss: res.Loss, Acc: float32(res.Accuracy()),
	})
	epoch, batch := r.trainer.Position()
	s := r.s
	s.mu.Lock()
	s.rec.Step, s.rec.Epoch, s.rec.Batch = step, epoch, batch
	every := s.rec.SnapshotEvery
	s.mu.Unlock()

	if every > 0 && step%int64(every) == 0 {
		r.storeSnapshot(step)
	}
	if now.Sub(r.lastMetrics) >= r.s.m.opts.MetricsInterval || res.EpochEnd {
		r.flushMetrics(now)
	}
	if res.EpochEnd {
		r.endEpoch(res, step)
	}
	if now.Sub(r.lastImages) >= r.s.m.opts.PublishInterval || res.EpochEnd {
		r.publishImages(now, false)
	}
	if r.trainer.Done() {
		r.finish()
		return true
	}
	return false
}

// finish checkpoints a model that has trained every epoch, unless that is
// done, and says the session is finished.
func (r *runner) finish() {
	r.checkpointIfNeeded()
	reason := fmt.Sprintf("trained %d epochs", r.trainer.Epochs)
	if r.trainer.Epochs == 1 {
		reason = "trained 1 epoch"
	}
	r.s.setStatus(StatusFinished, reason)
}

// flushMetrics publishes the batches trained since the last flush as one
// "metrics" message.
func (r *runner) flushMetrics(now time.Time) {
	r.lastMetrics = now
	if len(r.pending) == 0 {
		return
	}
	if d := now.Sub(r.speedSince); d >= 500*time.Millisecond {
		r.imagesPerSec = float64(r.speedImages) / d.Seconds()
		r.speedSince, r.speedImages = now, 0
	}
	s := r.s
	s.mu.Lock()
	seq := s.nextSeqLocked()
	s.rec.ImagesPerSec = r.imagesPerSec
	ev := MetricsEvent{Points: r.pending, ImagesPerSec: r.imagesPerSec, Batch: s.rec.Batch, Epoch: s.rec.Epoch}
	s.mu.Unlock()
	s.publishEvent("metrics", seq, ev)
	r.pending = nil // the event holds the old slice
}

// endEpoch evaluates the model on the test set, checkpoints, and publishes
// the epoch's results.
func (r *runner) endEpoch(res engine.StepResult, step int64) {
	start := time.Now()
	test := r.s.m.opts.Test
	ev := engine.Evaluate(r.model, test, r.trainer.BatchSize)
	result := EpochResult{
		Epoch: res.Epoch + 1, Step: step,
		TrainLoss: r.epochLoss / r.epochSeen, TrainAcc: r.epochCorrect / r.epochSeen,
		TestLoss: ev.Loss, TestAcc: ev.Accuracy, Seconds: r.epochTime.Seconds(),
	}
	event := EpochEvent{EpochResult: result}
	for i, p := range ev.Predicted {
		label := test.Labels[i]
		event.Confusion[label][p]++
		if p != label && len(event.Mistakes) < maxMistakes {
			event.Mistakes = append(event.Mistakes, Mistake{Index: i, Label: label, Predicted: p})
		}
	}
	r.epochLoss, r.epochCorrect, r.epochSeen, r.epochTime = 0, 0, 0, 0
	s := r.s
	s.mu.Lock()
	s.rec.Epochs = append(s.rec.Epochs, result)
	s.rec.TrainingSeconds += result.Seconds
	s.rec.Confusion, s.rec.Mistakes = event.Confusion, event.Mistakes
	seq := s.nextSeqLocked()
	s.mu.Unlock()
	s.publishEvent("epoch", seq, event)
	s.saveRecord()
	// The epoch's history is made durable before its checkpoint: a crash
	// between the two leaves a history one epoch ahead of the checkpoint,
	// which the next start rewinds; the other order would leave a
	// checkpoint whose epoch has no result.
	if err := s.m.persist.sync(); err != nil {
		s.m.log.Error("storing the epoch's history", "session", s.id, "err", err)
	}
	r.checkpointIfNeeded()
	s.m.log.Info("epoch done", "session", s.id, "epoch", result.Epoch,
		"testAcc", fmt.Sprintf("%.2f%%", 100*result.TestAcc), "seconds", fmt.Sprintf("%.1f", result.Seconds),
		"evalSeconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
}

// maxMistakes bounds the misclassified test images an epoch reports.
const maxMistakes = 60

// checkpointIfNeeded saves the model, optimiser and position unless
// nothing was trained since the last checkpoint. A failure (a full disk,
// say) leaves the previous checkpoint as it was (the write is atomic) and
// the record unchanged; it is logged, and the owner and viewers get a
// "notice" saying which checkpoint is kept. Training goes on, the next
// checkpoint tries again, and the first that succeeds ends the notice.
func (r *runner) checkpointIfNeeded() {
	step := r.trainer.StepCount()
	if step == r.lastCheckpointStep && r.s.hasCheckpoint() {
		return
	}
	epoch, batch := r.trainer.Position()
	at := position{epoch: epoch, batch: batch, step: step}
	rec := r.s.Record()
	st := engine.TrainState{Epoch: epoch, Batch: batch, BatchSize: rec.Config.BatchSize, Epochs: rec.Config.Epochs}
	if err := engine.SaveCheckpoint(r.s.m.store.CheckpointPath(r.s.id), r.model, r.opt, st); err != nil {
		r.s.m.log.Error("checkpoint failed; the previous one stays", "session", r.s.id, "step", step, "err", err)
		r.s.checkpointFailed(at, r.kept, err)
		return
	}
	r.lastCheckpointStep = step
	r.kept = &at
	r.s.mu.Lock()
	r.s.rec.CheckpointStep = step
	r.s.mu.Unlock()
	r.s.saveRecord()
	r.s.checkpointWritten(at)
}

// rewindIfBehind handles a resume from a checkpoint older than the
// recorded progress (the server died mid-epoch): the record and viewers go
// back to the checkpoint's step.
func (r *runner) rewindIfBehind() {
	step := r.trainer.StepCount()
	s := r.s
	s.mu.Lock()
	restarted := s.resumedAfterRestart
	s.resumedAfterRestart = false
	if s.rec.Step <= step && !restarted {
		s.mu.Unlock()
		return
	}
	// Viewers may have seen batches after the checkpoint that the store
	// never got (they are published before they are committed), so a
	// resume after a restart always says where training goes on from.
	lost := max(s.rec.Step-step, 0)
	epoch, batch := r.trainer.Position()
	s.rec.Step, s.rec.Epoch, s.rec.Batch = step, epoch, batch
	kept := s.rec.Epochs[:0]
	for _, e := range s.rec.Epochs {
		if e.Step <= step {
			kept = append(kept, e)
		}
	}
	s.rec.Epochs = kept
	seq := s.nextSeqLocked()
	s.mu.Unlock()
	s.publishEvent("rewind", seq, RewindEvent{Step: step,
		Reason: fmt.Sprintf("resumed from the checkpoint at batch %d; %d batches after it were lost", step, lost)})
	s.saveRecord()
}

// releaseSlot gives the training slot back so a queued session can run.
func (r *runner) releaseSlot() {
	if r.hasSlot {
		<-r.s.m.slots
		r.hasSlot = false
	}
}

// detach runs as the goroutine exits: the final weights become the ones
// predictions use, and the session no longer has a runner.
func (r *runner) detach() {
	r.releaseSlot()
	r.s.weights.Store(snapshotWeights(r.model, r.trainer.StepCount()))
	r.s.mu.Lock()
	r.s.runner = nil
	r.s.mu.Unlock()
	r.s.publishState()
}
