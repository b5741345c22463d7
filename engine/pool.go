package engine

import "math"

// MaxPool2D keeps the largest value of each size x size window, moving by
// stride, per channel. It has no parameters; it shrinks the maps so that
// later layers see more of the image at lower cost.
type MaxPool2D struct {
	name         string
	in, out      Shape
	size, stride int

	argmax []int32 // for every output value, the index of its maximum within the example
	y, dx  Tensor
}

func newMaxPool2D(name string, in Shape, size, stride int) *MaxPool2D {
	return &MaxPool2D{
		name: name, in: in, size: size, stride: stride,
		out: Shape{(in.H-size)/stride + 1, (in.W-size)/stride + 1, in.C},
	}
}

// Name implements Layer.
func (l *MaxPool2D) Name() string { return l.name }

// InShape implements Layer.
func (l *MaxPool2D) InShape() Shape { return l.in }

// OutShape implements Layer.
func (l *MaxPool2D) OutShape() Shape { return l.out }

// Params implements Layer.
func (l *MaxPool2D) Params() []Param { return nil }

// Forward implements Layer.
func (l *MaxPool2D) Forward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.y.resize(x.N, l.out)
	outSize, inSize := l.out.Size(), l.in.Size()
	if cap(l.argmax) < x.N*outSize {
		l.argmax = make([]int32, x.N*outSize)
	}
	l.argmax = l.argmax[:x.N*outSize]
	w, c := l.in.W, l.in.C
	parallelFor(x.N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			img := x.Data[n*inSize : (n+1)*inSize]
			y := l.y.Data[n*outSize : (n+1)*outSize]
			arg := l.argmax[n*outSize : (n+1)*outSize]
			for oy := 0; oy < l.out.H; oy++ {
				for ox := 0; ox < l.out.W; ox++ {
					o := (oy*l.out.W + ox) * c
					for ch := 0; ch < c; ch++ {
						best, at := float32(math.Inf(-1)), -1
						for py := 0; py < l.size; py++ {
							for px := 0; px < l.size; px++ {
								i := ((oy*l.stride+py)*w+ox*l.stride+px)*c + ch
								if v := img[i]; v > best || at < 0 {
									best, at = v, i
								}
							}
						}
						y[o+ch], arg[o+ch] = best, int32(at)
					}
				}
			}
		}
	})
	return &l.y
}

// Backward implements Layer: each output's gradient goes to the input that
// was its maximum; the others get none.
func (l *MaxPool2D) Backward(dy *Tensor) *Tensor {
	l.dx.resize(dy.N, l.in)
	outSize, inSize := l.out.Size(), l.in.Size()
	parallelFor(dy.N, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			dx := l.dx.Data[n*inSize : (n+1)*inSize]
			clear32(dx)
			arg := l.argmax[n*outSize : (n+1)*outSize]
			for o, g := range dy.Data[n*outSize : (n+1)*outSize] {
				dx[arg[o]] += g
			}
		}
	})
	return &l.dx
}
