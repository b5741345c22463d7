package engine

import "fmt"

// Conv2D is a 2-D convolution with OC filters of KH x KW x C, a stride,
// "valid" or "same" padding and an optional fused ReLU.
//
// Forward is im2col + one GEMM: the receptive field of every output pixel
// becomes a row of cols(M, K), and out(M, OC) = cols · W(K, OC) + b is the
// output in NHWC. Backward reuses cols: dW = colsᵀ·dY, dcols = dY·Wᵀ, and
// col2im scatters dcols back onto the input's pixels.
type Conv2D struct {
	name           string
	in, out        Shape
	kh, kw, stride int
	padTop, padLft int
	relu           bool
	noInputGrad    bool

	weight, bias, dWeight, dBias []float32 // W (K, OC), b (OC)

	x    *Tensor   // input of the last Forward
	cols []float32 // (M, K); holds dcols during Backward
	y    Tensor    // (N, OH, OW, OC)
	dx   Tensor    // (N, H, W, C)
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

func newConv2D(name string, in Shape, filters, kh, kw, stride int, same, relu bool) *Conv2D {
	oh, padTop := convOutSize(in.H, kh, stride, same)
	ow, padLft := convOutSize(in.W, kw, stride, same)
	k := kh * kw * in.C
	return &Conv2D{
		name: name, in: in, out: Shape{oh, ow, filters},
		kh: kh, kw: kw, stride: stride, padTop: padTop, padLft: padLft, relu: relu,
		weight: make([]float32, k*filters), dWeight: make([]float32, k*filters),
		bias: make([]float32, filters), dBias: make([]float32, filters),
	}
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
		{Name: l.name + ".weight", Shape: []int{l.kh, l.kw, l.in.C, l.out.C}, Value: l.weight, Grad: l.dWeight},
		{Name: l.name + ".bias", Shape: []int{l.out.C}, Value: l.bias, Grad: l.dBias},
	}
}

func (l *Conv2D) skipInputGrad() { l.noInputGrad = true }

// Kernel describes the filter geometry: kernel height and width, stride.
func (l *Conv2D) Kernel() (kh, kw, stride int) { return l.kh, l.kw, l.stride }

// Forward implements Layer.
func (l *Conv2D) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.x = x
	n, oc := x.N, l.out.C
	m, k := n*l.out.H*l.out.W, l.kh*l.kw*l.in.C
	l.cols = grow(l.cols, m*k)
	l.im2col(l.cols, x)
	l.y.resize(n, l.out)
	y := l.y.Data
	// Seed every output row with the bias, then accumulate the product.
	for r := 0; r < m; r++ {
		copy(y[r*oc:(r+1)*oc], l.bias)
	}
	gemm(false, false, m, oc, k, 1, l.cols, k, l.weight, oc, 1, y, oc)
	if l.relu {
		reluInPlace(y)
	}
	return &l.y
}

// Backward implements Layer.
func (l *Conv2D) Backward(dy *Tensor) *Tensor {
	n, oc := dy.N, l.out.C
	m, k := n*l.out.H*l.out.W, l.kh*l.kw*l.in.C
	g := dy.Data
	if l.relu {
		reluMask(g, l.y.Data)
	}
	gemm(true, false, k, oc, m, 1, l.cols, k, g, oc, 1, l.dWeight, oc) // dW += colsᵀ·dY
	addColumnSums(l.dBias, g, m, oc)                                   // db += Σ rows of dY
	if l.noInputGrad {
		return nil
	}
	gemm(false, true, m, k, oc, 1, g, oc, l.weight, oc, 0, l.cols, k) // dcols = dY·Wᵀ
	l.dx.resize(n, l.in)
	l.col2im(l.dx.Data, l.cols, n)
	return &l.dx
}

// im2col writes the receptive field of each output pixel as a row:
// cols(M, K) with K ordered (ky, kx, c), zeros where the field leaves the
// padded input.
func (l *Conv2D) im2col(cols []float32, x *Tensor) {
	h, w, c := l.in.H, l.in.W, l.in.C
	oh, ow := l.out.H, l.out.W
	k := l.kh * l.kw * c
	parallelFor(x.N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			img := x.Data[n*h*w*c : (n+1)*h*w*c]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					row := cols[((n*oh+oy)*ow+ox)*k:][:k]
					for ky := 0; ky < l.kh; ky++ {
						iy := oy*l.stride - l.padTop + ky
						dst := row[ky*l.kw*c : (ky+1)*l.kw*c]
						if iy < 0 || iy >= h {
							clear32(dst)
							continue
						}
						ix0 := ox*l.stride - l.padLft
						if ix0 >= 0 && ix0+l.kw <= w { // the whole kernel row is inside
							copy(dst, img[(iy*w+ix0)*c:(iy*w+ix0+l.kw)*c])
							continue
						}
						for kx := 0; kx < l.kw; kx++ {
							ix := ix0 + kx
							if ix < 0 || ix >= w {
								clear32(dst[kx*c : (kx+1)*c])
							} else {
								copy(dst[kx*c:(kx+1)*c], img[(iy*w+ix)*c:(iy*w+ix+1)*c])
							}
						}
					}
				}
			}
		}
	})
}

// col2im is the adjoint of im2col: it adds every row of dcols(M, K) back
// onto the input pixels it was read from. Examples are independent, so the
// batch is split across CPUs without locks.
func (l *Conv2D) col2im(dx, dcols []float32, batch int) {
	h, w, c := l.in.H, l.in.W, l.in.C
	oh, ow := l.out.H, l.out.W
	k := l.kh * l.kw * c
	parallelFor(batch, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			img := dx[n*h*w*c : (n+1)*h*w*c]
			clear32(img)
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					row := dcols[((n*oh+oy)*ow+ox)*k:][:k]
					for ky := 0; ky < l.kh; ky++ {
						iy := oy*l.stride - l.padTop + ky
						if iy < 0 || iy >= h {
							continue
						}
						for kx := 0; kx < l.kw; kx++ {
							ix := ox*l.stride - l.padLft + kx
							if ix < 0 || ix >= w {
								continue
							}
							src := row[(ky*l.kw+kx)*c:][:c]
							dst := img[(iy*w+ix)*c:][:c]
							for i, v := range src {
								dst[i] += v
							}
						}
					}
				}
			}
		}
	})
}

// String describes the layer the way Keras prints it.
func (l *Conv2D) String() string {
	return fmt.Sprintf("Conv2D(%d, %dx%d, stride %d)", l.out.C, l.kh, l.kw, l.stride)
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
