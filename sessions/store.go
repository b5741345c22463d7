package sessions

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store keeps sessions on disk: records, event history and filter/activation
// snapshots in one bbolt file, checkpoints as files beside it.
//
//	<dir>/cnnviz.db                  bbolt
//	    sessions/<id>                Record as JSON
//	    events/<id>/<seq>            one durable stream message (JSON), key big-endian
//	    snapshots/<id>/<step>        one image frame (binary), key big-endian
//	<dir>/checkpoints/<id>.ckpt      engine checkpoint, replaced atomically
//
// bbolt over SQLite: the data is a few key-value maps read by prefix and
// range (events after a sequence number, the snapshot nearest a step), which
// is what a B+tree with ordered byte keys does natively; it is pure Go with
// no SQL layer, and every write transaction is atomic and fsynced, so a kill
// -9 leaves the last committed state.
type Store struct {
	db  *bolt.DB
	dir string
}

var (
	bucketSessions  = []byte("sessions")
	bucketEvents    = []byte("events")
	bucketSnapshots = []byte("snapshots")
)

// ErrNotFound is returned for a session or snapshot that does not exist.
var ErrNotFound = errors.New("not found")

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, "cnnviz.db")
	// A second server on the same folder would wait for the file lock
	// forever; fail fast with a message instead.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is in use by another cnnviz process", path)
		}
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketEvents, bucketSnapshots} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store{db: db, dir: dir}, nil
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }

// CheckpointPath is where the session's checkpoint lives.
func (s *Store) CheckpointPath(id string) string {
	return filepath.Join(s.checkpointDir(), id+".ckpt")
}

// checkpointDir is the folder of every session's checkpoint.
func (s *Store) checkpointDir() string { return filepath.Join(s.dir, "checkpoints") }

// Records returns every stored session record. Records that cannot be
// decoded are reported in the error but do not hide the others.
func (s *Store) Records() ([]*Record, error) {
	var out []*Record
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			r := new(Record)
			if err := json.Unmarshal(v, r); err != nil {
				errs = append(errs, fmt.Errorf("session %s: %w", k, err))
				return nil
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, errors.Join(errs...)
}

// write is one pending change, applied by Apply in a single transaction.
type write struct {
	record   *Record // put a record (already copied by the caller)
	id       string
	seq      uint64 // event
	event    []byte
	step     int64 // snapshot
	snapshot []byte
}

// Apply commits writes in one transaction: the batching that lets the
// persister fsync a few times a second instead of once per batch.
func (s *Store) Apply(ws []write) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range ws {
			switch {
			case w.record != nil:
				data, err := json.Marshal(w.record)
				if err != nil {
					return err
				}
				if err := tx.Bucket(bucketSessions).Put([]byte(w.record.ID), data); err != nil {
					return err
				}
			case w.event != nil:
				b, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists([]byte(w.id))
				if err != nil {
					return err
				}
				if err := b.Put(u64key(w.seq), w.event); err != nil {
					return err
				}
			case w.snapshot != nil:
				b, err := tx.Bucket(bucketSnapshots).CreateBucketIfNotExists([]byte(w.id))
				if err != nil {
					return err
				}
				packed, err := compress(w.snapshot)
				if err != nil {
					return err
				}
				if err := b.Put(u64key(uint64(w.step)), packed); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Event is one stored stream message.
type Event struct {
	Seq  uint64
	Data []byte
}

// Events returns the session's stored events with a sequence number above
// after, in order.
func (s *Store) Events(id string, after uint64) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64key(after + 1)); k != nil; k, v = c.Next() {
			out = append(out, Event{Seq: binary.BigEndian.Uint64(k), Data: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Snapshot returns the stored snapshot at step, or the nearest one before
// it (the nearest after it when none precedes).
func (s *Store) Snapshot(id string, step int64) (int64, []byte, error) {
	var at int64
	var frame []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots).Bucket([]byte(id))
		if b == nil {
			return ErrNotFound
		}
		c := b.Cursor()
		k, v := c.Seek(u64key(uint64(max(step, 0))))
		if k == nil || int64(binary.BigEndian.Uint64(k)) > step {
			if pk, pv := c.Prev(); pk != nil {
				k, v = pk, pv
			} else if k == nil {
				return ErrNotFound
			}
		}
		at = int64(binary.BigEndian.Uint64(k))
		var err error
		frame, err = decompress(v)
		return err
	})
	return at, frame, err
}

// SnapshotSteps lists the steps at which snapshots were kept.
func (s *Store) SnapshotSteps(id string) ([]int64, error) {
	var out []int64
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	return out, err
}

// Delete removes a session's record, history, snapshots and checkpoint.
func (s *Store) Delete(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketEvents, bucketSnapshots} {
			if err := tx.Bucket(name).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: deleting %s: %w", id, err)
	}
	if err := os.Remove(s.CheckpointPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Snapshots are stored deflated: activation maps after a ReLU are mostly
// zeros, and the persister goroutine, not training, pays for it.
func compress(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxSnapshot bounds a decompressed snapshot, so a corrupt value cannot
// make a reader allocate without limit.
const maxSnapshot = 64 << 20

func decompress(b []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxSnapshot+1))
	if err != nil {
		return nil, fmt.Errorf("store: corrupt snapshot: %w", err)
	}
	if len(out) > maxSnapshot {
		return nil, errors.New("store: snapshot too large")
	}
	return out, nil
}

func u64key(v uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], v)
	return k[:]
}
