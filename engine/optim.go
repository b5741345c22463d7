package engine

import (
	"fmt"
	"math"
	"sort"
	"unsafe"
)

// Optimizer updates parameters from their gradients. Its state (velocities,
// moment estimates) is kept per parameter name in slots, which checkpoints
// store as "<param>/<slot>" tensors.
type Optimizer interface {
	// Step applies one update to every parameter from its Grad.
	Step(params []Param)
	// Config returns the settings the optimiser was built from.
	Config() OptimizerConfig
	// Steps is the number of updates applied so far.
	Steps() int64
	// Slots returns the state, keyed "<param>/<slot>", e.g.
	// "conv1.weight/adam.m". The slices are the optimiser's own.
	Slots() map[string][]float32
	// Restore sets the state from a checkpoint. Slots missing from the map
	// start from zero; slots of another optimiser are an error. (Restore in
	// save.go checks their sizes against the parameters.)
	Restore(steps int64, slots map[string][]float32) error
}

// OptimizerConfig selects and tunes an optimiser. Zero fields take the
// defaults of Keras 2, which the reference model was trained with.
type OptimizerConfig struct {
	Name         string  `json:"name"`                   // "sgd", "adam" or "adadelta"
	LearningRate float64 `json:"learningRate,omitempty"` // sgd 0.01, adam 0.001, adadelta 1.0
	Momentum     float64 `json:"momentum,omitempty"`     // sgd only, default 0
	Beta1        float64 `json:"beta1,omitempty"`        // adam, default 0.9
	Beta2        float64 `json:"beta2,omitempty"`        // adam, default 0.999
	Rho          float64 `json:"rho,omitempty"`          // adadelta, default 0.95
	Epsilon      float64 `json:"epsilon,omitempty"`      // adam and adadelta, default 1e-7
}

// WithDefaults fills unset fields with the Keras 2 defaults for the named
// optimiser.
func (c OptimizerConfig) WithDefaults() OptimizerConfig {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	switch c.Name {
	case "sgd":
		def(&c.LearningRate, 0.01)
	case "adam":
		def(&c.LearningRate, 0.001)
		def(&c.Beta1, 0.9)
		def(&c.Beta2, 0.999)
		def(&c.Epsilon, 1e-7)
	case "adadelta":
		def(&c.LearningRate, 1.0)
		def(&c.Rho, 0.95)
		def(&c.Epsilon, 1e-7)
	}
	return c
}

// Validate reports the first setting that cannot work, naming the field.
func (c OptimizerConfig) Validate() error {
	bad := func(field string, v float64, want string) error {
		return fmt.Errorf("optimizer %s: %s %g: %s", c.Name, field, v, want)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch c.Name {
	case "sgd", "adam", "adadelta":
	default:
		return fmt.Errorf("optimizer %q: unknown (want sgd, adam or adadelta)", c.Name)
	}
	if !finite(c.LearningRate) || c.LearningRate <= 0 || c.LearningRate > 100 {
		return bad("learningRate", c.LearningRate, "must be in (0, 100]")
	}
	if !finite(c.Momentum) || c.Momentum < 0 || c.Momentum >= 1 {
		return bad("momentum", c.Momentum, "must be in [0, 1)")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"beta1", c.Beta1}, {"beta2", c.Beta2}, {"rho", c.Rho}} {
		if !finite(f.v) || f.v < 0 || f.v >= 1 {
			return bad(f.name, f.v, "must be in [0, 1)")
		}
	}
	if !finite(c.Epsilon) || c.Epsilon < 0 || c.Epsilon > 1 {
		return bad("epsilon", c.Epsilon, "must be in [0, 1]")
	}
	return nil
}

// NewOptimizer builds the optimiser c names, after filling defaults and
// validating.
func NewOptimizer(c OptimizerConfig) (Optimizer, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	base := slotState{slots: map[string][]float32{}}
	switch c.Name {
	case "sgd":
		return &SGD{cfg: c, slotState: base}, nil
	case "adam":
		return &Adam{cfg: c, slotState: base}, nil
	default:
		return &Adadelta{cfg: c, slotState: base}, nil
	}
}

// slotState is the bookkeeping the optimisers share: a step counter and
// named per-parameter buffers allocated on first use.
type slotState struct {
	steps int64
	slots map[string][]float32
	// cache remembers, per parameter position, the slots found for it, so
	// that a step builds no map keys (and allocates nothing).
	cache [][]cachedSlot
}

type cachedSlot struct {
	value *float32 // the parameter's storage: the entry is for it only
	name  string
	buf   []float32
}

// slot returns the slot name of p, the i-th parameter of the step.
func (s *slotState) slot(i int, p Param, name string) []float32 {
	for len(s.cache) <= i {
		s.cache = append(s.cache, nil)
	}
	value := unsafe.SliceData(p.Value)
	for _, c := range s.cache[i] {
		if c.value == value && c.name == name && len(c.buf) == len(p.Value) {
			return c.buf
		}
	}
	key := p.Name + "/" + name
	v, ok := s.slots[key]
	if !ok {
		v = make([]float32, len(p.Value))
		s.slots[key] = v
	}
	s.cache[i] = append(s.cache[i], cachedSlot{value, name, v})
	return v
}

// Steps implements Optimizer.
func (s *slotState) Steps() int64 { return s.steps }

// Slots implements Optimizer.
func (s *slotState) Slots() map[string][]float32 { return s.slots }

func (s *slotState) restore(prefixes []string, steps int64, slots map[string][]float32) error {
	if steps < 0 {
		return fmt.Errorf("optimizer state: negative step count %d", steps)
	}
	names := make([]string, 0, len(slots))
	for k := range slots {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ok := false
		for _, p := range prefixes {
			if len(k) > len(p) && k[len(k)-len(p):] == p {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("optimizer state: unexpected slot %q", k)
		}
	}
	s.steps = steps
	s.cache = nil
	s.slots = make(map[string][]float32, len(slots))
	for k, v := range slots {
		s.slots[k] = append([]float32(nil), v...)
	}
	return nil
}

// SGD is stochastic gradient descent with optional momentum, in Keras's
// form: v ← μ·v − lr·g; p ← p + v.
type SGD struct {
	cfg OptimizerConfig
	slotState
}

// Config implements Optimizer.
func (o *SGD) Config() OptimizerConfig { return o.cfg }

// Restore implements Optimizer.
func (o *SGD) Restore(steps int64, slots map[string][]float32) error {
	return o.restore([]string{"/sgd.velocity"}, steps, slots)
}

// Step implements Optimizer.
func (o *SGD) Step(params []Param) {
	o.steps++
	lr, mu := float32(o.cfg.LearningRate), float32(o.cfg.Momentum)
	for i, p := range params {
		if mu == 0 {
			for i, g := range p.Grad {
				p.Value[i] -= lr * g
			}
			continue
		}
		v := o.slot(i, p, "sgd.velocity")
		for i, g := range p.Grad {
			v[i] = mu*v[i] - lr*g
			p.Value[i] += v[i]
		}
	}
}

// Adam is Kingma & Ba (2015), Algorithm 1, with bias-corrected moments:
// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
// p ← p − lr · m̂ / (√v̂ + ε), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ).
type Adam struct {
	cfg OptimizerConfig
	slotState
}

// Config implements Optimizer.
func (o *Adam) Config() OptimizerConfig { return o.cfg }

// Restore implements Optimizer.
func (o *Adam) Restore(steps int64, slots map[string][]float32) error {
	return o.restore([]string{"/adam.m", "/adam.v"}, steps, slots)
}

// Step implements Optimizer.
func (o *Adam) Step(params []Param) {
	o.steps++
	t := float64(o.steps)
	b1, b2 := float32(o.cfg.Beta1), float32(o.cfg.Beta2)
	c1 := float32(1 - math.Pow(o.cfg.Beta1, t))
	c2 := float32(1 - math.Pow(o.cfg.Beta2, t))
	lr, eps := float32(o.cfg.LearningRate), float32(o.cfg.Epsilon)
	for i, p := range params {
		m, v := o.slot(i, p, "adam.m"), o.slot(i, p, "adam.v")
		for i, g := range p.Grad {
			m[i] = b1*m[i] + (1-b1)*g
			v[i] = b2*v[i] + (1-b2)*g*g
			p.Value[i] -= lr * (m[i] / c1) / (sqrt32(v[i]/c2) + eps)
		}
	}
}

// Adadelta is Zeiler (2012), Algorithm 1, with Keras 2's learning rate:
// a ← ρ·a + (1−ρ)·g²; Δ = g · √(d + ε) / √(a + ε); p ← p − lr·Δ;
// d ← ρ·d + (1−ρ)·Δ².
//
// The update (vec.go) is spread over the CPUs in chunks of
// adadeltaChunk values; each value's update is independent of the others.
type Adadelta struct {
	cfg OptimizerConfig
	slotState

	// The step in progress: one chunk per part.
	chunks    []adadeltaChunkOf
	task      *parallelTask
	cur       []Param
	accum, dl [][]float32
}

type adadeltaChunkOf struct{ param, lo, hi int }

const adadeltaChunk = 1 << 15

// Config implements Optimizer.
func (o *Adadelta) Config() OptimizerConfig { return o.cfg }

// Restore implements Optimizer.
func (o *Adadelta) Restore(steps int64, slots map[string][]float32) error {
	return o.restore([]string{"/adadelta.accum", "/adadelta.delta"}, steps, slots)
}

// Step implements Optimizer.
func (o *Adadelta) Step(params []Param) {
	o.steps++
	o.chunks, o.accum, o.dl = o.chunks[:0], o.accum[:0], o.dl[:0]
	for i, p := range params {
		o.accum = append(o.accum, o.slot(i, p, "adadelta.accum"))
		o.dl = append(o.dl, o.slot(i, p, "adadelta.delta"))
		for lo := 0; lo < len(p.Value); lo += adadeltaChunk {
			o.chunks = append(o.chunks, adadeltaChunkOf{i, lo, min(lo+adadeltaChunk, len(p.Value))})
		}
	}
	if o.task == nil {
		o.task = newParallelTask(o.part)
	}
	o.cur = params
	o.task.run(len(o.chunks), 0)
	o.cur = nil
}

func (o *Adadelta) part(c, _ int) {
	ch := o.chunks[c]
	p := o.cur[ch.param]
	rho, lr, eps := float32(o.cfg.Rho), float32(o.cfg.LearningRate), float32(o.cfg.Epsilon)
	adadeltaUpdate(p.Value[ch.lo:ch.hi], p.Grad[ch.lo:ch.hi],
		o.accum[ch.param][ch.lo:ch.hi], o.dl[ch.param][ch.lo:ch.hi], rho, lr, eps) // vec.go
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
