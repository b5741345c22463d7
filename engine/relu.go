package engine

// ReLU is max(0, x) as a layer of its own. Conv2D and Dense can also fuse it
// ("activation": "relu"), which saves a pass over memory and a buffer.
type ReLU struct {
	name  string
	shape Shape
	y     Tensor
}

// Name implements Layer.
func (l *ReLU) Name() string { return l.name }

// InShape implements Layer.
func (l *ReLU) InShape() Shape { return l.shape }

// OutShape implements Layer.
func (l *ReLU) OutShape() Shape { return l.shape }

// Params implements Layer.
func (l *ReLU) Params() []Param { return nil }

// Forward implements Layer.
func (l *ReLU) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.y.resize(x.N, l.shape)
	copy(l.y.Data, x.Data)
	reluInPlace(l.y.Data)
	return &l.y
}

// Backward implements Layer.
func (l *ReLU) Backward(dy *Tensor) *Tensor {
	reluMask(dy.Data, l.y.Data)
	return dy
}

// reluInPlace sets negative values to zero. The builtin max compiles to a
// branch-free instruction; an if on the sign, mispredicted on half of the
// random-signed pre-activations, made this 8x slower (34 ms against 4 ms
// for conv2's 4.7M values at batch 128). NaN stays NaN, so a diverging run
// is still caught by the loss.
func reluInPlace(y []float32) {
	for i, v := range y {
		y[i] = max(v, 0)
	}
}

// reluMask zeroes the gradient where the ReLU's output y is not positive
// (see reluMaskTo).
func reluMask(g, y []float32) { reluMaskTo(g, g, y) }
