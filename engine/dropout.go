package engine

import "math/rand/v2"

// Dropout zeroes each value with probability Rate while training and scales
// the survivors by 1/(1-Rate) ("inverted dropout", as Keras does), so that
// inference is the identity.
type Dropout struct {
	name  string
	shape Shape
	rate  float32
	rng   *rand.Rand
	mask  []float32
	y     Tensor
	// active records whether the last Forward dropped anything, so that
	// Backward after an inference pass passes gradients through unchanged.
	active bool
}

// Name implements Layer.
func (l *Dropout) Name() string { return l.name }

// InShape implements Layer.
func (l *Dropout) InShape() Shape { return l.shape }

// OutShape implements Layer.
func (l *Dropout) OutShape() Shape { return l.shape }

// Params implements Layer.
func (l *Dropout) Params() []Param { return nil }

// Rate is the probability that a value is dropped while training.
func (l *Dropout) Rate() float32 { return l.rate }

// reseed restarts the layer's random stream. The trainer reseeds at every
// epoch from (seed, epoch, layer), so a run resumed from an epoch-end
// checkpoint draws the same masks as one that never stopped.
func (l *Dropout) reseed(s1, s2 uint64) { l.rng = rand.New(rand.NewPCG(s1, s2)) }

// Forward implements Layer.
func (l *Dropout) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.active = training && l.rate > 0
	if !l.active {
		return x
	}
	l.y.resize(x.N, l.shape)
	l.mask = grow(l.mask, len(x.Data))
	keep := 1 / (1 - l.rate)
	// One 64-bit draw gives two 32-bit uniform numbers.
	threshold := uint32(float64(l.rate) * (1 << 32))
	for i := 0; i < len(x.Data); i += 2 {
		r := l.rng.Uint64()
		for j, u := range [2]uint32{uint32(r), uint32(r >> 32)} {
			if i+j >= len(x.Data) {
				break
			}
			m := float32(0)
			if u >= threshold {
				m = keep
			}
			l.mask[i+j] = m
			l.y.Data[i+j] = x.Data[i+j] * m
		}
	}
	return &l.y
}

// Backward implements Layer.
func (l *Dropout) Backward(dy *Tensor) *Tensor {
	if !l.active {
		return dy
	}
	for i, m := range l.mask[:len(dy.Data)] {
		dy.Data[i] *= m
	}
	return dy
}

// Flatten turns an HxWxC volume into a vector of H*W*C values. In NHWC the
// order of the values is already Keras's, so it only relabels the shape.
type Flatten struct {
	name    string
	in, out Shape
	y, dx   Tensor
}

// Name implements Layer.
func (l *Flatten) Name() string { return l.name }

// InShape implements Layer.
func (l *Flatten) InShape() Shape { return l.in }

// OutShape implements Layer.
func (l *Flatten) OutShape() Shape { return l.out }

// Params implements Layer.
func (l *Flatten) Params() []Param { return nil }

// Forward implements Layer.
func (l *Flatten) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.y = Tensor{N: x.N, Shape: l.out, Data: x.Data}
	return &l.y
}

// Backward implements Layer.
func (l *Flatten) Backward(dy *Tensor) *Tensor {
	l.dx = Tensor{N: dy.N, Shape: l.in, Data: dy.Data}
	return &l.dx
}
