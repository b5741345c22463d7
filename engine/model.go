package engine

import "fmt"

// Model is a sequential stack of layers built from a Spec. It is not safe
// for concurrent use: give each goroutine its own (see Clone).
type Model struct {
	Spec   Spec
	Layers []Layer

	seed    uint64
	params  []Param
	dlogits Tensor
	probs   Tensor

	// Runs of example layers, fused in training (see Forward): chainFrom[i]
	// is the run that starts at layer i, chainTo[i] the one that ends there.
	chainFrom, chainTo []*chain
}

// collect gathers the parameters of all layers, in layer order.
func (m *Model) collect() {
	m.params = m.params[:0]
	for _, l := range m.Layers {
		m.params = append(m.params, l.Params()...)
	}
}

// Params returns every learnable parameter, in layer order. The slices are
// the model's own.
func (m *Model) Params() []Param { return m.params }

// ParamCount is the number of learnable values.
func (m *Model) ParamCount() int {
	n := 0
	for _, p := range m.params {
		n += len(p.Value)
	}
	return n
}

// Forward runs the batch through every layer and returns the class scores
// (logits, before softmax), owned by the last layer.
//
// A batch large enough to keep every CPU busy with whole images goes
// through each run of consecutive example layers (convolutions, pooling,
// dropout, flatten) image by image: one image's maps stay in cache from
// one layer to the next, rather than a whole batch's going through memory
// between layers. Smaller batches go layer by layer, each spread over the
// CPUs on its own. Both give the same bits.
func (m *Model) Forward(x *Tensor, training bool) *Tensor {
	m.findChains()
	for i := 0; i < len(m.Layers); {
		if c := m.chainFrom[i]; c != nil && fuseBatch(x.N) {
			x = c.forward(x, training)
			i = c.hi
			continue
		}
		x = m.Layers[i].Forward(x, training)
		i++
	}
	return x
}

// fuseBatch reports whether a batch of n is run image by image through
// chains of layers.
func fuseBatch(n int) bool { return n >= 4*procs() }

// chain is a run of consecutive example layers [lo, hi) of a model.
type chain struct {
	lo, hi   int
	layers   []exampleLayer
	n, parts int
	stop     int // backward: layers[stop:] compute an input gradient
	fwd, bwd *parallelTask
}

// findChains finds the runs of two or more example layers, once.
func (m *Model) findChains() {
	if len(m.chainFrom) == len(m.Layers) {
		return
	}
	m.chainFrom = make([]*chain, len(m.Layers))
	m.chainTo = make([]*chain, len(m.Layers))
	for i := 0; i < len(m.Layers); {
		j := i
		var run []exampleLayer
		for ; j < len(m.Layers); j++ {
			el, ok := m.Layers[j].(exampleLayer)
			if !ok {
				break
			}
			run = append(run, el)
		}
		if len(run) >= 2 {
			c := &chain{lo: i, hi: j, layers: run}
			c.fwd = newParallelTask(c.forwardExample)
			c.bwd = newParallelTask(c.backwardPart)
			m.chainFrom[i], m.chainTo[j-1] = c, c
		}
		i = max(j, i+1)
	}
}

func (c *chain) forward(x *Tensor, training bool) *Tensor {
	for _, l := range c.layers {
		x = l.beginForward(x, training)
	}
	c.fwd.run(x.N, 0)
	return x
}

func (c *chain) forwardExample(i, slot int) {
	for _, l := range c.layers {
		l.forwardExample(i, slot)
	}
}

// backward runs the chain's layers backward, from its last, and returns the
// gradient of its first layer's input (nil if that layer computes none).
func (c *chain) backward(dy *Tensor) *Tensor {
	c.n, c.parts = dy.N, backwardParts(dy.N)
	c.stop = len(c.layers)
	for k := len(c.layers) - 1; k >= 0 && dy != nil; k-- {
		dy = c.layers[k].beginBackward(dy)
		c.stop = k
	}
	c.bwd.run(c.parts, 0)
	for k := len(c.layers) - 1; k >= c.stop; k-- {
		c.layers[k].endBackward()
	}
	return dy
}

func (c *chain) backwardPart(p, slot int) {
	i0, i1 := p*c.n/c.parts, (p+1)*c.n/c.parts
	for i := i0; i < i1; i++ {
		for k := len(c.layers) - 1; k >= c.stop; k-- {
			c.layers[k].backwardExample(i, p, i == i0, slot)
		}
	}
}

// ZeroGrad clears every gradient. Backward adds to gradients, so each step
// starts here.
func (m *Model) ZeroGrad() {
	for _, p := range m.params {
		clear32(p.Grad)
	}
}

// TrainStep does one step of minibatch training: forward with dropout,
// softmax cross-entropy, backward, and one optimiser update. It returns the
// batch's mean loss and how many examples the model got right before the
// update.
func (m *Model) TrainStep(x *Tensor, labels []uint8, opt Optimizer) (loss float32, correct int) {
	logits := m.Forward(x, true)
	m.dlogits.resize(logits.N, logits.Shape)
	loss, correct = SoftmaxCrossEntropy(logits, labels, m.dlogits.Data)
	m.ZeroGrad()
	m.Backward(&m.dlogits)
	opt.Step(m.params)
	return loss, correct
}

// Backward propagates the gradient of the loss with respect to the logits
// through every layer, filling the parameters' gradients.
func (m *Model) Backward(dlogits *Tensor) {
	m.findChains()
	g := dlogits
	for i := len(m.Layers) - 1; i >= 0 && g != nil; {
		if c := m.chainTo[i]; c != nil && fuseBatch(g.N) {
			g = c.backward(g)
			i = c.lo - 1
			continue
		}
		g = m.Layers[i].Backward(g)
		i--
	}
}

// Predict returns the class probabilities (N, 10) for a batch, without
// dropout. The tensor is owned by the model.
func (m *Model) Predict(x *Tensor) *Tensor {
	logits := m.Forward(x, false)
	m.probs.resize(logits.N, logits.Shape)
	Softmax(m.probs.Data, logits)
	return &m.probs
}

// Tap is the output of one layer for the examples of a batch, for
// visualisation: activation maps after a conv layer, pool outputs after a
// max-pool layer.
type Tap struct {
	Layer string // "conv1"
	Type  string // the spec's layer type, "conv2d"
	Shape Shape
	Data  []float32 // N * Shape.Size() values, a copy the caller owns
}

// Taps runs an inference pass and returns every layer's output, the last
// one as probabilities (softmax applied).
func (m *Model) Taps(x *Tensor) []Tap {
	taps := make([]Tap, 0, len(m.Layers))
	for i, l := range m.Layers {
		x = l.Forward(x, false)
		data := append([]float32(nil), x.Data...)
		if i == len(m.Layers)-1 {
			Softmax(data, x)
		}
		taps = append(taps, Tap{Layer: l.Name(), Type: m.Spec.Layers[i].Type, Shape: l.OutShape(), Data: data})
	}
	return taps
}

// Clone returns an independent model with the same spec and weights and
// buffers of its own, for use on another goroutine.
func (m *Model) Clone() *Model {
	c, err := Build(m.Spec, m.seed)
	if err != nil {
		panic("engine: rebuilding a model that was built once: " + err.Error())
	}
	c.CopyWeightsFrom(m)
	return c
}

// CopyWeightsFrom copies every parameter value from src, which must have
// been built from the same spec.
func (m *Model) CopyWeightsFrom(src *Model) {
	if len(src.params) != len(m.params) {
		panic("engine: CopyWeightsFrom between different models")
	}
	for i, p := range m.params {
		if len(src.params[i].Value) != len(p.Value) {
			panic(fmt.Sprintf("engine: CopyWeightsFrom: %s has %d values, source %d", p.Name, len(p.Value), len(src.params[i].Value)))
		}
		copy(p.Value, src.params[i].Value)
	}
}

// Layer returns the layer with the given name, or nil.
func (m *Model) Layer(name string) Layer {
	for _, l := range m.Layers {
		if l.Name() == name {
			return l
		}
	}
	return nil
}

// ReseedDropout restarts the random stream of every dropout layer from
// (the model's seed, epoch, layer position). The trainer calls it at the start
// of each epoch, so a run resumed from an epoch-end checkpoint draws the same
// masks as one that never stopped.
func (m *Model) ReseedDropout(epoch int) {
	for i, l := range m.Layers {
		if d, ok := l.(*Dropout); ok {
			d.reseed(m.seed, uint64(epoch)<<32|uint64(i))
		}
	}
}

// Seed is the seed the model's weights were drawn with.
func (m *Model) Seed() uint64 { return m.seed }
