package engine

// ReLU is max(0, x) as a layer of its own. Conv2D and Dense can also fuse it
// ("activation": "relu"), which saves a pass over memory and a buffer.
type ReLU struct {
	name  string
	shape Shape
	y, dx Tensor
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

func reluInPlace(y []float32) {
	for i, v := range y {
		if v < 0 {
			y[i] = 0
		}
	}
}

// reluMask zeroes the gradient where the ReLU's output y was not positive.
func reluMask(g, y []float32) {
	y = y[:len(g)]
	for i, v := range y {
		if v <= 0 {
			g[i] = 0
		}
	}
}
