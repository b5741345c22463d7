package engine

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
					// NHWC: the window's pixels are runs of c contiguous
					// channels, so the channel loop is innermost. The first
					// pixel seeds the maxima; a tie keeps the earlier one.
					o := (oy*l.out.W + ox) * c
					ym, am := y[o:o+c], arg[o:o+c]
					first := ((oy*l.stride)*w + ox*l.stride) * c
					copy(ym, img[first:first+c])
					for ch := range am {
						am[ch] = int32(first + ch)
					}
					for py := 0; py < l.size; py++ {
						for px := 0; px < l.size; px++ {
							if py == 0 && px == 0 {
								continue
							}
							at := ((oy*l.stride+py)*w + ox*l.stride + px) * c
							for ch, v := range img[at : at+c] {
								if v > ym[ch] {
									ym[ch], am[ch] = v, int32(at+ch)
								}
							}
						}
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
