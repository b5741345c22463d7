package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// NoticeEvent is the payload of a "notice" message: a problem that training
// goes on despite, such as a checkpoint that could not be written, or the
// end of one. Viewers show the latest warning of each code until a notice
// with the same code and level "ok" follows.
type NoticeEvent struct {
	Code    string `json:"code"`  // what it concerns; today only NoticeCheckpoint
	Level   string `json:"level"` // LevelWarning while the problem lasts, LevelOK once it is over
	Message string `json:"message"`
	Step    int64  `json:"step"`  // where training stood
	Epoch   int    `json:"epoch"` // epochs completed
}

// Notice codes and levels.
const (
	// NoticeCheckpoint concerns the session's checkpoint: one could not be
	// written (level warning), or one was written after such a failure
	// (level ok).
	NoticeCheckpoint = "checkpoint"

	LevelWarning = "warning"
	LevelOK      = "ok"
)

// position is where training stands, in the terms of a checkpoint: epochs
// completed and batches of the next epoch trained.
type position struct {
	epoch, batch int
	step         int64
}

// String describes the position for people: "the end of epoch 2", "batch
// 40 of epoch 3".
func (p position) String() string {
	switch {
	case p.step == 0:
		return "the start of training"
	case p.batch == 0:
		return fmt.Sprintf("the end of epoch %d", p.epoch)
	}
	return fmt.Sprintf("batch %d of epoch %d", p.batch, p.epoch+1)
}

// checkpointFailed tells the owner and the viewers that the checkpoint at
// at could not be written and which one is kept (nil: none), as a stored
// "notice" and in the session's state, until a checkpoint succeeds.
func (s *Session) checkpointFailed(at position, kept *position, err error) {
	msg := fmt.Sprintf("checkpoint at %s failed: %s; ", at, checkpointReason(err, s.m.store.CheckpointPath(s.id)))
	if kept != nil {
		msg += fmt.Sprintf("the checkpoint at %s is kept", kept)
	} else {
		msg += "there is no earlier checkpoint, so a restart would train from the start again"
	}
	s.mu.Lock()
	if s.checkpointWarning == msg { // the same failure again (pause after a failed epoch end)
		s.mu.Unlock()
		return
	}
	s.checkpointWarning = msg
	seq := s.nextSeqLocked()
	s.mu.Unlock()
	s.publishEvent("notice", seq, NoticeEvent{Code: NoticeCheckpoint, Level: LevelWarning, Message: msg, Step: at.step, Epoch: at.epoch})
}

// checkpointWritten ends a checkpoint warning, if there is one: the
// checkpoint at at is now the one kept.
func (s *Session) checkpointWritten(at position) {
	s.mu.Lock()
	if s.checkpointWarning == "" {
		s.mu.Unlock()
		return
	}
	s.checkpointWarning = ""
	seq := s.nextSeqLocked()
	s.mu.Unlock()
	msg := fmt.Sprintf("checkpoint at %s written; checkpoints work again", at)
	s.publishEvent("notice", seq, NoticeEvent{Code: NoticeCheckpoint, Level: LevelOK, Message: msg, Step: at.step, Epoch: at.epoch})
}

// checkpointReason says why a checkpoint could not be written or read
// without the server's directories, which are none of a viewer's business:
// "write: no space left on device", "load 0123abcd.ckpt: checkpoint:
// checksum mismatch".
func checkpointReason(err error, path string) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
}

// activeWarning returns the message of the last checkpoint notice in a
// stored history if it is a warning (no checkpoint succeeded after it), so
// that a restarted server keeps showing it.
func activeWarning(events []Event) string {
	for i := len(events) - 1; i >= 0; i-- {
		// Decoding every event of a long history would slow start-up;
		// the envelope always begins with its type.
		if !bytes.HasPrefix(events[i].Data, []byte(`{"type":"notice"`)) {
			continue
		}
		var env struct {
			Type string      `json:"type"`
			Data NoticeEvent `json:"data"`
		}
		if json.Unmarshal(events[i].Data, &env) != nil || env.Data.Code != NoticeCheckpoint {
			continue
		}
		if env.Data.Level == LevelWarning {
			return env.Data.Message
		}
		return ""
	}
	return ""
}
