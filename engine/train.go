package engine

import (
	"math/rand/v2"

	"cnnviz/engine/mnist"
)

// Trainer runs minibatch training one step at a time, so its caller decides
// when to pause, observe, checkpoint or stop. Epochs shuffle the training
// set with a generator seeded from (seed, epoch): the order of a resumed run
// is the order of one that never stopped.
type Trainer struct {
	Model     *Model
	Opt       Optimizer
	Train     *mnist.Set
	BatchSize int
	Epochs    int

	epoch, batch int   // position: the next step trains batch `batch` of epoch `epoch` (0-based)
	perm         []int // this epoch's order of the training set
	x            Tensor
	labels       []uint8
}

// StepResult describes one training step.
type StepResult struct {
	Epoch           int     // 0-based epoch of the batch just trained
	Batch           int     // 0-based batch within the epoch
	BatchesPerEpoch int     //
	Images          int     // images in the batch
	Loss            float32 // mean loss of the batch
	Correct         int     // examples of the batch classified right (before the update)
	EpochEnd        bool    // the batch was the epoch's last
}

// Accuracy is the fraction of the batch classified right.
func (r StepResult) Accuracy() float64 { return float64(r.Correct) / float64(r.Images) }

// NewTrainer prepares training of m on train with opt, starting at epoch 0.
func NewTrainer(m *Model, opt Optimizer, train *mnist.Set, batchSize, epochs int) *Trainer {
	if batchSize <= 0 || epochs <= 0 {
		panic("engine: NewTrainer needs a positive batch size and epoch count")
	}
	return &Trainer{Model: m, Opt: opt, Train: train, BatchSize: batchSize, Epochs: epochs}
}

// BatchesPerEpoch counts the batches of an epoch; the last may be short.
func (t *Trainer) BatchesPerEpoch() int { return (t.Train.Len() + t.BatchSize - 1) / t.BatchSize }

// Position returns the epoch and batch the next Step will train.
func (t *Trainer) Position() (epoch, batch int) { return t.epoch, t.batch }

// StepCount counts the batches trained so far over all epochs.
func (t *Trainer) StepCount() int64 {
	return int64(t.epoch)*int64(t.BatchesPerEpoch()) + int64(t.batch)
}

// Done reports whether every epoch has been trained.
func (t *Trainer) Done() bool { return t.epoch >= t.Epochs }

// SeekEpoch makes the next Step start epoch e from its first batch, for
// resuming from an epoch-end checkpoint.
func (t *Trainer) SeekEpoch(e int) { t.Seek(e, 0) }

// Seek makes the next Step train batch b of epoch e, for resuming from a
// checkpoint taken mid-epoch. The epoch's order is regenerated from the
// seed, so the remaining batches are the ones the interrupted run would have
// trained; dropout masks restart from the epoch's seed, so only a resume at
// an epoch boundary is bit-identical to an uninterrupted run.
func (t *Trainer) Seek(e, b int) {
	t.epoch, t.batch, t.perm = e, b, nil
}

// Step trains one batch. It must not be called once Done.
func (t *Trainer) Step() StepResult {
	if t.Done() {
		panic("engine: Step after the last epoch")
	}
	if t.batch == 0 || t.perm == nil {
		t.startEpoch()
	}
	if t.batch >= t.BatchesPerEpoch() { // a Seek past the end of a shorter epoch
		t.epoch, t.batch = t.epoch+1, 0
		if t.Done() {
			panic("engine: Step after the last epoch")
		}
		t.startEpoch()
	}
	lo := t.batch * t.BatchSize
	hi := min(lo+t.BatchSize, t.Train.Len())
	fillBatch(&t.x, &t.labels, t.Train, t.perm[lo:hi])
	loss, correct := t.Model.TrainStep(&t.x, t.labels, t.Opt)
	r := StepResult{
		Epoch: t.epoch, Batch: t.batch, BatchesPerEpoch: t.BatchesPerEpoch(),
		Images: hi - lo, Loss: loss, Correct: correct,
	}
	t.batch++
	if t.batch == r.BatchesPerEpoch {
		r.EpochEnd = true
		t.epoch, t.batch = t.epoch+1, 0
	}
	return r
}

func (t *Trainer) startEpoch() {
	n := t.Train.Len()
	if len(t.perm) != n {
		t.perm = make([]int, n)
	}
	for i := range t.perm {
		t.perm[i] = i
	}
	rng := rand.New(rand.NewPCG(t.Model.seed, 0x73687566666c65^uint64(t.epoch))) // "shuffle"
	rng.Shuffle(n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	t.Model.ReseedDropout(t.epoch)
}

// fillBatch loads the images idx of set into x, scaled to [0, 1] as the
// reference model expects, and their labels.
func fillBatch(x *Tensor, labels *[]uint8, set *mnist.Set, idx []int) {
	shape := Shape{set.Rows, set.Cols, 1}
	x.resize(len(idx), shape)
	*labels = (*labels)[:0]
	size := shape.Size()
	for i, k := range idx {
		dst := x.Data[i*size : (i+1)*size]
		for j, p := range set.Image(k) {
			dst[j] = float32(p) * (1.0 / 255)
		}
		*labels = append(*labels, set.Labels[k])
	}
}

// Evaluation is the result of classifying a whole set.
type Evaluation struct {
	Loss      float64 // mean cross-entropy
	Accuracy  float64 // fraction right
	Correct   int
	Predicted []uint8 // the predicted digit of every example, in set order
}

// Evaluate classifies every example of set with m (no dropout), batchSize
// at a time.
func Evaluate(m *Model, set *mnist.Set, batchSize int) Evaluation {
	var (
		x      Tensor
		labels []uint8
		d      []float32
		idx    = make([]int, 0, batchSize)
		ev     = Evaluation{Predicted: make([]uint8, set.Len())}
		total  float64
	)
	for lo := 0; lo < set.Len(); lo += batchSize {
		hi := min(lo+batchSize, set.Len())
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		fillBatch(&x, &labels, set, idx)
		logits := m.Forward(&x, false)
		d = grow(d, len(logits.Data))
		loss, correct := SoftmaxCrossEntropy(logits, labels, d)
		total += float64(loss) * float64(hi-lo)
		ev.Correct += correct
		for i := 0; i < hi-lo; i++ {
			ev.Predicted[lo+i] = uint8(argmax(logits.Example(i)))
		}
	}
	if n := set.Len(); n > 0 {
		ev.Loss = total / float64(n)
		ev.Accuracy = float64(ev.Correct) / float64(n)
	}
	return ev
}
