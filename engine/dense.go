package engine

// Dense is a fully connected layer, y = x·W + b with W (in, out), with an
// optional fused ReLU. A final Dense with 10 outputs gives the class scores;
// the softmax is fused into the loss.
type Dense struct {
	name        string
	in, out     Shape
	relu        bool
	noInputGrad bool

	weight, bias, dWeight, dBias []float32

	x     *Tensor
	y, dx Tensor
}

func newDense(name string, in Shape, units int, relu bool) *Dense {
	k := in.Size()
	return &Dense{
		name: name, in: in, out: Shape{1, 1, units}, relu: relu,
		weight: make([]float32, k*units), dWeight: make([]float32, k*units),
		bias: make([]float32, units), dBias: make([]float32, units),
	}
}

// Name implements Layer.
func (l *Dense) Name() string { return l.name }

// InShape implements Layer.
func (l *Dense) InShape() Shape { return l.in }

// OutShape implements Layer.
func (l *Dense) OutShape() Shape { return l.out }

// Params implements Layer.
func (l *Dense) Params() []Param {
	return []Param{
		{Name: l.name + ".weight", Shape: []int{l.in.Size(), l.out.C}, Value: l.weight, Grad: l.dWeight},
		{Name: l.name + ".bias", Shape: []int{l.out.C}, Value: l.bias, Grad: l.dBias},
	}
}

func (l *Dense) skipInputGrad() { l.noInputGrad = true }

// Forward implements Layer.
func (l *Dense) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.x = x
	n, k, u := x.N, l.in.Size(), l.out.C
	l.y.resize(n, l.out)
	gemmBias(false, false, n, u, k, x.Data, k, l.weight, u, l.bias, l.relu, l.y.Data, u)
	return &l.y
}

// Backward implements Layer.
func (l *Dense) Backward(dy *Tensor) *Tensor {
	n, k, u := dy.N, l.in.Size(), l.out.C
	g := dy.Data
	if l.relu {
		reluMask(g, l.y.Data)
	}
	gemm(true, false, k, u, n, 1, l.x.Data, k, g, u, 1, l.dWeight, u) // dW += xᵀ·dY
	addColumnSums(l.dBias, g, n, u)
	if l.noInputGrad {
		return nil
	}
	l.dx.resize(n, l.in)
	gemm(false, true, n, k, u, 1, g, u, l.weight, u, 0, l.dx.Data, k) // dx = dY·Wᵀ
	return &l.dx
}

// addColumnSums adds the sum of each column of g(rows, cols) into dst(cols).
func addColumnSums(dst, g []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := g[r*cols : (r+1)*cols]
		for j, v := range row {
			dst[j] += v
		}
	}
}
