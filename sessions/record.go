package sessions

import (
	"time"

	"cnnviz/engine"
)

// Status is where a session is in its lifecycle:
//
//	created → queued → running ⇄ paused → finished
//	                     └──────────┴──→ stopped
//
// A running session waits as queued while every training slot is taken.
type Status string

// The statuses a session can have.
const (
	StatusCreated  Status = "created"
	StatusQueued   Status = "queued"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusFinished Status = "finished"
	StatusStopped  Status = "stopped"
	StatusDiverged Status = "diverged" // the loss became NaN or infinite; the reason says at which batch
	StatusFailed   Status = "failed"   // the session cannot train, e.g. its checkpoint is unreadable
)

// wantsTraining reports whether a session in this status should be
// training (or waiting for a slot): after a restart these resume.
func (s Status) wantsTraining() bool { return s == StatusQueued || s == StatusRunning }

// final reports whether the session will never train again.
func (s Status) final() bool {
	return s == StatusFinished || s == StatusStopped || s == StatusDiverged || s == StatusFailed
}

// Record is a session as stored: its settings, where it stands, and what it
// has achieved so far.
type Record struct {
	ID           string    `json:"id"`
	Settings     Settings  `json:"settings"` // as the creator sent them
	Config       Config    `json:"config"`   // resolved
	Status       Status    `json:"status"`
	StatusReason string    `json:"statusReason,omitempty"`
	OwnerHash    []byte    `json:"ownerHash"` // SHA-256 of the owner token; the token itself is never stored
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`

	Step            int64         `json:"step"`  // batches trained
	Epoch           int           `json:"epoch"` // epochs completed
	Batch           int           `json:"batch"` // batches of the current epoch trained
	BatchesPerEpoch int           `json:"batchesPerEpoch"`
	Seq             uint64        `json:"seq"`              // last stream sequence number used
	CheckpointStep  int64         `json:"checkpointStep"`   // -1: no checkpoint yet
	Epochs          []EpochResult `json:"epochs,omitempty"` // one per completed epoch
	Probe           int           `json:"probe"`            // test image shown in the activation maps
	SnapshotEvery   int           `json:"snapshotEvery"`    // batches between stored snapshots
	ImagesPerSec    float64       `json:"imagesPerSec"`     // recent training speed
	TrainingSeconds float64       `json:"trainingSeconds"`  // time spent training, all epochs

	// From the last evaluation on the test set.
	Confusion [engine.Classes][engine.Classes]int `json:"confusion"` // [true label][predicted]
	Mistakes  []Mistake                           `json:"mistakes,omitempty"`
}

// EpochResult is what an epoch achieved: the mean training loss and accuracy
// over its batches, and loss and accuracy on the test set at its end.
type EpochResult struct {
	Epoch     int     `json:"epoch"` // 1-based
	Step      int64   `json:"step"`
	TrainLoss float64 `json:"trainLoss"`
	TrainAcc  float64 `json:"trainAcc"`
	TestLoss  float64 `json:"testLoss"`
	TestAcc   float64 `json:"testAcc"`
	Seconds   float64 `json:"seconds"`
}
