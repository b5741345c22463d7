package engine

import "fmt"

// Conv2D is a 2-D convolution with OC filters of KH x KW x C, a stride,
// "valid" or "same" padding and an optional fused ReLU.
//
// The three products (forward, weight gradient, input gradient) are GEMMs
// over the virtual im2col matrix, computed image by image by the kernels of
// conv_gemm.go, which read the images in place. Bias and ReLU are applied
// as each output tile is stored; the ReLU's mask is applied to the gradient
// as it is copied into a per-goroutine buffer that the two backward
// products then read from cache.
type Conv2D struct {
	name        string
	in, out     Shape
	geom        convGeom
	kh, kw      int // also in geom; kept for summary.go
	relu        bool
	noInputGrad bool
	kern        *gemmKernel // the GEMM kernel family (tests pick others)

	weight, bias, dWeight, dBias []float32 // W (K, OC), b (OC)

	x  *Tensor   // input of the last Forward
	xp []float32 // (N, HP, WP, C): the padded input, if there is padding
	y  Tensor    // (N, OH, OW, OC)
	dx Tensor    // (N, H, W, C)

	// Backward state: the gradient being propagated, the flipped (or, for
	// strides > 1, transposed) weights, per-part gradient sums and
	// per-slot scratch.
	dy      *Tensor
	wf      []float32
	parts   int
	partial []float32 // parts-1 blocks of K*OC + OC (part 0 adds into dWeight)
	scratch [][]float32

	bands                              int // forward: parts per image
	forwardTask, padTask, backwardTask *parallelTask
}

// convOutSize returns the output length and the padding before the first
// element along one axis, following TensorFlow: "same" pads so that
// out = ceil(in/stride), with any odd padding at the end.
func convOutSize(in, k, stride int, same bool) (out, padBefore int) {
	if !same {
		return (in-k)/stride + 1, 0
	}
	out = (in + stride - 1) / stride
	pad := max((out-1)*stride+k-in, 0)
	return out, pad / 2
}

// convBandMinWork is the multiply-adds per image (2M, some 10 µs on a
// core) above which a small batch is cut into bands of rows.
const convBandMinWork = 1 << 21

func newConv2D(name string, in Shape, filters, kh, kw, stride int, same, relu bool) *Conv2D {
	oh, padTop := convOutSize(in.H, kh, stride, same)
	ow, padLft := convOutSize(in.W, kw, stride, same)
	g := convGeom{
		h: in.H, w: in.W, c: in.C, hp: in.H, wp: in.W, padTop: padTop, padLft: padLft,
		kh: kh, kw: kw, s: stride, oh: oh, ow: ow, oc: filters,
	}
	if hp, wp := (oh-1)*stride+kh, (ow-1)*stride+kw; padTop > 0 || padLft > 0 || hp > in.H || wp > in.W {
		g.hp, g.wp = hp, wp
	}
	k := g.k()
	l := &Conv2D{
		name: name, in: in, out: Shape{oh, ow, filters}, geom: g, kh: kh, kw: kw, relu: relu, kern: gemmDefault,
		weight: make([]float32, k*filters), dWeight: make([]float32, k*filters),
		bias: make([]float32, filters), dBias: make([]float32, filters),
	}
	l.forwardTask = newParallelTask(l.forwardPart)
	l.padTask = newParallelTask(l.padPart)
	l.backwardTask = newParallelTask(l.backwardPart)
	return l
}

// Name implements Layer.
func (l *Conv2D) Name() string { return l.name }

// InShape implements Layer.
func (l *Conv2D) InShape() Shape { return l.in }

// OutShape implements Layer.
func (l *Conv2D) OutShape() Shape { return l.out }

// Params implements Layer.
func (l *Conv2D) Params() []Param {
	return []Param{
		{Name: l.name + ".weight", Shape: []int{l.geom.kh, l.geom.kw, l.in.C, l.out.C}, Value: l.weight, Grad: l.dWeight},
		{Name: l.name + ".bias", Shape: []int{l.out.C}, Value: l.bias, Grad: l.dBias},
	}
}

func (l *Conv2D) skipInputGrad() { l.noInputGrad = true }

// Kernel describes the filter geometry: kernel height and width, stride.
func (l *Conv2D) Kernel() (kh, kw, stride int) { return l.geom.kh, l.geom.kw, l.geom.s }

// padded reports whether the kernels read a padded copy of the input.
func (l *Conv2D) padded() bool { return l.geom.hp != l.in.H || l.geom.wp != l.in.W }

// Forward implements Layer.
func (l *Conv2D) Forward(x *Tensor, training bool) *Tensor {
	y := l.beginForward(x, training)
	n := x.N
	// One part per image; a small batch (a single image to classify) is
	// cut into bands of output rows as well, to keep every CPU busy, if
	// an image is worth waking helpers for (a few µs each).
	l.bands = 1
	if p := 4 * procs(); n < p && l.out.Size()*l.geom.k() >= convBandMinWork {
		l.bands = min(l.out.H, (p+n-1)/n)
	}
	if l.bands == 1 {
		l.forwardTask.run(n, 0)
		return y
	}
	if l.padded() {
		l.padTask.run(n, 0)
	}
	l.forwardTask.run(n*l.bands, 0)
	return y
}

// beginForward implements exampleLayer.
func (l *Conv2D) beginForward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.x = x
	if l.padded() {
		l.xp = grow(l.xp, x.N*l.geom.hp*l.geom.wp*l.in.C)
	}
	l.y.resize(x.N, l.out)
	l.bands = 1
	return &l.y
}

// forwardExample implements exampleLayer.
func (l *Conv2D) forwardExample(i, _ int) {
	if l.padded() {
		l.padPart(i, 0)
	}
	convForward(l.kern, &l.geom, l.input(i), l.weight, l.bias, l.relu, l.y.Example(i), 0, l.out.H)
}

// input returns image i as the kernels read it: padded or not.
func (l *Conv2D) input(i int) []float32 {
	if l.padded() {
		size := l.geom.hp * l.geom.wp * l.in.C
		return l.xp[i*size : (i+1)*size]
	}
	return l.x.Example(i)
}

func (l *Conv2D) padPart(i, _ int) {
	size := l.geom.hp * l.geom.wp * l.in.C
	convPad(&l.geom, l.xp[i*size:(i+1)*size], l.x.Example(i), true)
}

func (l *Conv2D) forwardPart(p, slot int) {
	if l.bands == 1 {
		l.forwardExample(p, slot)
		return
	}
	i, band := p/l.bands, p%l.bands
	oy0, oy1 := band*l.out.H/l.bands, (band+1)*l.out.H/l.bands
	convForward(l.kern, &l.geom, l.input(i), l.weight, l.bias, l.relu, l.y.Example(i), oy0, oy1)
}

// Backward implements Layer.
func (l *Conv2D) Backward(dy *Tensor) *Tensor {
	dx := l.beginBackward(dy)
	l.backwardTask.run(backwardParts(dy.N), len(l.scratch))
	l.endBackward()
	return dx
}

// beginBackward implements exampleLayer.
func (l *Conv2D) beginBackward(dy *Tensor) *Tensor {
	g := &l.geom
	n, k := dy.N, g.k()
	l.dy = dy
	l.parts = backwardParts(n)
	l.partial = grow(l.partial, (l.parts-1)*(k*g.oc+g.oc))
	for len(l.scratch) < procs() {
		l.scratch = append(l.scratch, nil)
	}
	if l.noInputGrad {
		return nil
	}
	l.dx.resize(n, l.in)
	l.wf = grow(l.wf, k*g.oc)
	if g.s == 1 {
		convFlipWeights(g, l.wf, l.weight)
	} else {
		transpose(l.wf, l.weight, k, g.oc)
	}
	return &l.dx
}

// endBackward implements exampleLayer: it adds the later parts' sums, in
// order.
func (l *Conv2D) endBackward() {
	g := &l.geom
	k := g.k()
	for p := 1; p < l.parts; p++ {
		part := l.partial[(p-1)*(k*g.oc+g.oc) : p*(k*g.oc+g.oc)]
		addTo(l.dWeight, part[:k*g.oc])
		addTo(l.dBias, part[k*g.oc:])
	}
	l.dy = nil
}

func (l *Conv2D) backwardPart(p, slot int) {
	n := l.dy.N
	for i := p * n / l.parts; i < (p+1)*n/l.parts; i++ {
		l.backwardExample(i, p, i == p*n/l.parts, slot)
	}
}

// backwardExample implements exampleLayer: image i's gradient, masked by
// the ReLU, is copied into the slot's buffer (inside a zero border, for the
// input gradient), then both products read it from cache. Part 0 adds its
// weight gradient to the layer's; each later part sums its own, from zero.
func (l *Conv2D) backwardExample(i, part int, first bool, slot int) {
	g := &l.geom
	k := g.k()
	dw, db := l.dWeight, l.dBias
	beta := float32(1)
	if part > 0 {
		buf := l.partial[(part-1)*(k*g.oc+g.oc) : part*(k*g.oc+g.oc)]
		dw, db = buf[:k*g.oc], buf[k*g.oc:]
		if first {
			beta = 0
		}
	}
	// The slot's buffer: dyp for stride 1, else dy then dcols.
	hy, wy, top, left := g.oh, g.ow, 0, 0
	if g.s == 1 {
		hy, wy = g.dypShape()
		top, left = g.kh-1, g.kw-1
	}
	size := hy * wy * g.oc
	if g.s != 1 && !l.noInputGrad {
		size += g.oh * g.ow * k
	}
	buf := l.scratch[slot]
	if len(buf) != size {
		buf = make([]float32, size) // zero border, kept from then on
		l.scratch[slot] = buf
	}
	dyp := buf[:hy*wy*g.oc]
	rowLen := g.ow * g.oc
	src, out := l.dy.Example(i), l.y.Example(i)
	for oy := 0; oy < g.oh; oy++ {
		dst := dyp[((oy+top)*wy+left)*g.oc:][:rowLen]
		if l.relu {
			reluMaskTo(dst, src[oy*rowLen:][:rowLen], out[oy*rowLen:][:rowLen])
		} else {
			copy(dst, src[oy*rowLen:][:rowLen])
		}
	}
	inner := dyp[(top*wy+left)*g.oc:]
	// While the products run, bring in this layer's output for the next
	// image of the part, which the layers above in a chain (pooling) and
	// this one's mask will read.
	var next []float32
	if i+1 < l.y.N {
		next = l.y.Example(i + 1)
	}
	convWeightGrad(l.kern, g, l.input(i), inner, wy*g.oc, dw, db, beta, next)
	if l.noInputGrad {
		return
	}
	dx := l.dx.Example(i)
	if g.s == 1 {
		convInputGrad(l.kern, g, dyp, l.wf, dx)
	} else {
		convInputGradStrided(l.kern, g, dyp, l.wf, buf[hy*wy*g.oc:], dx)
	}
}

// String describes the layer the way Keras prints it.
func (l *Conv2D) String() string {
	return fmt.Sprintf("Conv2D(%d, %dx%d, stride %d)", l.out.C, l.geom.kh, l.geom.kw, l.geom.s)
}

// transpose writes dst (cols, rows) = srcᵀ for src (rows, cols).
func transpose(dst, src []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		for c, v := range src[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
}
