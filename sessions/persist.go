package sessions

import (
	"log/slog"
	"time"
)

// persister owns all writes to the store. Training goroutines hand it
// records, events and snapshots through a buffered channel and go on; it
// commits them in one transaction every flushEvery (or sooner when many are
// waiting), so a session that trains 50 batches a second costs a few fsyncs
// a second, not 50.
type persister struct {
	store  *Store
	log    *slog.Logger
	writes chan write
	flush  chan chan error
	done   chan struct{}
}

const (
	flushEvery   = 250 * time.Millisecond
	flushPending = 512
)

func newPersister(store *Store, log *slog.Logger) *persister {
	p := &persister{
		store:  store,
		log:    log,
		writes: make(chan write, 4096),
		flush:  make(chan chan error),
		done:   make(chan struct{}),
	}
	go p.loop()
	return p
}

// put queues a write. It blocks only if the disk has fallen thousands of
// writes behind, which slows training rather than losing history.
func (p *persister) put(w write) { p.writes <- w }

// sync commits everything queued so far and reports the error, if any.
func (p *persister) sync() error {
	ch := make(chan error)
	p.flush <- ch
	return <-ch
}

// close commits what is queued and stops the goroutine. No put may follow.
func (p *persister) close() error {
	err := p.sync()
	close(p.writes)
	<-p.done
	return err
}

func (p *persister) loop() {
	defer close(p.done)
	var pending []write
	timer := time.NewTimer(flushEvery)
	defer timer.Stop()
	commit := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := p.store.Apply(pending)
		if err != nil {
			// Keep going: the next commit retries nothing, but the error is
			// loud and the records written later carry the state forward.
			p.log.Error("store: commit failed", "writes", len(pending), "err", err)
		}
		pending = pending[:0]
		return err
	}
	for {
		select {
		case w, ok := <-p.writes:
			if !ok {
				commit()
				return
			}
			pending = append(pending, w)
			if len(pending) >= flushPending {
				commit()
			}
		case <-timer.C:
			commit()
			timer.Reset(flushEvery)
		case ch := <-p.flush:
			// Drain what is already queued so that sync covers every put
			// that happened before it.
			for drained := false; !drained; {
				select {
				case w := <-p.writes:
					pending = append(pending, w)
				default:
					drained = true
				}
			}
			ch <- commit()
		}
	}
}
