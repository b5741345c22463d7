package engine

import (
	"math"
	"math/rand/v2"
)

// Dropout zeroes each value with probability Rate while training and scales
// the survivors by 1/(1-Rate) ("inverted dropout", as Keras does), so that
// inference is the identity.
//
// The masks come from a counter-based generator: each Forward draws one
// 64-bit key from the layer's stream, and value i of the batch is kept when
// its 16-bit uniform, bits 16*(i%4) of mix(key, i/4), is at least
// round(Rate*65536). So any part of the batch can be drawn on its own (the
// work is split over CPUs, reproducibly), Backward regenerates the mask
// instead of storing it, and the rate is applied to within 2⁻¹⁷.
type Dropout struct {
	name  string
	shape Shape
	rate  float32
	rng   *rand.Rand

	key  uint64  // this batch's key
	x, y *Tensor // the pass in progress: y = mask(x)
	out  Tensor
	task *parallelTask
	// active records whether the last Forward dropped anything, so that
	// Backward after an inference pass passes gradients through unchanged.
	active bool
}

// dropoutChunk is the number of values per part of the work (a multiple of
// 4, so that parts start on a block of four uniforms).
const dropoutChunk = 1 << 14

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
	y := l.beginForward(x, training)
	if l.active {
		l.run(len(x.Data))
	}
	return y
}

// Backward implements Layer.
func (l *Dropout) Backward(dy *Tensor) *Tensor {
	dx := l.beginBackward(dy)
	if l.active {
		l.run(len(dy.Data))
	}
	l.endBackward()
	return dx
}

// beginForward implements exampleLayer.
func (l *Dropout) beginForward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.active = training && l.rate > 0
	if !l.active {
		return x
	}
	l.key = l.rng.Uint64()
	l.out.resize(x.N, l.shape)
	l.x, l.y = x, &l.out
	return &l.out
}

// forwardExample implements exampleLayer.
func (l *Dropout) forwardExample(i, _ int) {
	if l.active {
		l.mask(i*l.shape.Size(), (i+1)*l.shape.Size())
	}
}

// beginBackward implements exampleLayer: the gradient is masked in place.
func (l *Dropout) beginBackward(dy *Tensor) *Tensor {
	l.x, l.y = dy, dy
	return dy
}

// backwardExample implements exampleLayer.
func (l *Dropout) backwardExample(i, _ int, _ bool, slot int) { l.forwardExample(i, slot) }

// endBackward implements exampleLayer.
func (l *Dropout) endBackward() { l.x, l.y = nil, nil }

// run masks the whole batch in chunks of dropoutChunk values.
func (l *Dropout) run(n int) {
	if l.task == nil {
		l.task = newParallelTask(func(p, _ int) {
			l.mask(p*dropoutChunk, min((p+1)*dropoutChunk, len(l.x.Data)))
		})
	}
	l.task.run((n+dropoutChunk-1)/dropoutChunk, 0)
}

// mask writes values [lo, hi) of x, masked, into y.
func (l *Dropout) mask(lo, hi int) {
	dropoutMask(l.y.Data[lo:hi], l.x.Data[lo:hi], l.key, lo, l.rate)
}

// dropoutMask writes dst = src * 1/(1-rate) where value first+i of the
// batch is kept, else 0. Whole blocks of 32 values go to the assembly
// (vec_amd64.s) when the CPU has it; dropoutMaskGo is the reference.
func dropoutMask(dst, src []float32, key uint64, first int, rate float32) {
	src = src[:len(dst)]
	head := min(len(src), (4-first&3)&3) // up to the next block of four
	n := (len(src) - head) &^ 31
	if !vecAVX512 || !vecDropoutDQ || n == 0 {
		dropoutMaskGo(dst, src, key, first, rate)
		return
	}
	dropoutMaskGo(dst[:head], src[:head], key, first, rate)
	// The state of block b is key + (b+1)*golden, as in dropoutMix.
	b := uint64((first + head) >> 2)
	threshold, scale := dropoutParams(rate)
	vecDropoutAVX512(&dst[head], &src[head], n, key+(b+1)*dropoutGolden, dropoutGolden, uint32(threshold), scale)
	dropoutMaskGo(dst[head+n:], src[head+n:], key, first+head+n, rate)
}

// dropoutParams returns the 16-bit threshold of a kept value and the scale
// of the kept ones.
func dropoutParams(rate float32) (threshold int32, scale float32) {
	return int32(math.Round(float64(rate) * (1 << 16))), 1 / (1 - rate)
}

func dropoutMaskGo(dst, src []float32, key uint64, first int, rate float32) {
	src = src[:len(dst)]
	threshold, scale := dropoutParams(rate)
	// keep returns v*scale if the 16-bit uniform u passes, else 0, without
	// a branch (it would be mispredicted at random).
	keep := func(v float32, u uint64) float32 {
		pass := ^uint32((int32(u&0xffff) - threshold) >> 31)
		return math.Float32frombits(math.Float32bits(v*scale) & pass)
	}
	i := 0
	for ; i < len(src) && (first+i)&3 != 0; i++ { // up to the next block
		j := first + i
		dst[i] = keep(src[i], dropoutMix(key, uint64(j>>2))>>(16*(j&3)))
	}
	for ; i+4 <= len(src); i += 4 {
		h := dropoutMix(key, uint64((first+i)>>2))
		s, d := src[i:i+4:i+4], dst[i:i+4:i+4]
		d[0] = keep(s[0], h)
		d[1] = keep(s[1], h>>16)
		d[2] = keep(s[2], h>>32)
		d[3] = keep(s[3], h>>48)
	}
	for ; i < len(src); i++ {
		j := first + i
		dst[i] = keep(src[i], dropoutMix(key, uint64(j>>2))>>(16*(j&3)))
	}
}

const dropoutGolden = 0x9e3779b97f4a7c15

// dropoutMix is SplitMix64's output function (Steele, Lea & Flood 2014)
// applied to the block counter: consecutive counters give independent-
// looking 64-bit values.
func dropoutMix(key, block uint64) uint64 {
	z := key + (block+1)*dropoutGolden
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
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
func (l *Flatten) Forward(x *Tensor, training bool) *Tensor { return l.beginForward(x, training) }

// Backward implements Layer.
func (l *Flatten) Backward(dy *Tensor) *Tensor { return l.beginBackward(dy) }

// beginForward implements exampleLayer.
func (l *Flatten) beginForward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.y = Tensor{N: x.N, Shape: l.out, Data: x.Data}
	return &l.y
}

// beginBackward implements exampleLayer.
func (l *Flatten) beginBackward(dy *Tensor) *Tensor {
	l.dx = Tensor{N: dy.N, Shape: l.in, Data: dy.Data}
	return &l.dx
}

func (l *Flatten) forwardExample(i, slot int)                        {}
func (l *Flatten) backwardExample(i, part int, first bool, slot int) {}
func (l *Flatten) endBackward()                                      {}
