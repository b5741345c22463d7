package engine

// MaxPool2D keeps the largest value of each size x size window, moving by
// stride, per channel. It has no parameters; it shrinks the maps so that
// later layers see more of the image at lower cost.
//
// Forward keeps only the maxima, and Backward finds each window's maximum
// again by comparing its input with the output, bit for bit: the first
// pixel of the window that holds the maximum gets the gradient (ties go to
// the earlier pixel, as max keeps the earlier of equal values). Storing no
// argmax saves a write and a read of an index per output.
type MaxPool2D struct {
	name         string
	in, out      Shape
	size, stride int

	x                         *Tensor // input of the last Forward
	y, dx                     Tensor
	dy                        *Tensor
	forwardTask, backwardTask *parallelTask
}

func newMaxPool2D(name string, in Shape, size, stride int) *MaxPool2D {
	l := &MaxPool2D{
		name: name, in: in, size: size, stride: stride,
		out: Shape{(in.H-size)/stride + 1, (in.W-size)/stride + 1, in.C},
	}
	l.forwardTask = newParallelTask(l.forwardExample)
	l.backwardTask = newParallelTask(l.backwardPart)
	return l
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
	y := l.beginForward(x, training)
	l.forwardTask.run(x.N, 0)
	return y
}

// beginForward implements exampleLayer.
func (l *MaxPool2D) beginForward(x *Tensor, training bool) *Tensor {
	checkInput(l, x)
	l.x = x
	l.y.resize(x.N, l.out)
	return &l.y
}

// forwardExample implements exampleLayer: it pools example n, a window at
// a time (vec.go).
func (l *MaxPool2D) forwardExample(n, _ int) {
	w, c := l.in.W, l.in.C
	img, y := l.x.Example(n), l.y.Example(n)
	for oy := 0; oy < l.out.H; oy++ {
		for ox := 0; ox < l.out.W; ox++ {
			at := (oy*l.stride*w + ox*l.stride) * c
			poolMax(y[(oy*l.out.W+ox)*c:], img[at:], c, l.size, w*c)
		}
	}
}

// Backward implements Layer: each output's gradient goes to the input that
// was its maximum; the others get none.
func (l *MaxPool2D) Backward(dy *Tensor) *Tensor {
	dx := l.beginBackward(dy)
	l.backwardTask.run(dy.N, 0)
	l.endBackward()
	return dx
}

// beginBackward implements exampleLayer.
func (l *MaxPool2D) beginBackward(dy *Tensor) *Tensor {
	l.dx.resize(dy.N, l.in)
	l.dy = dy
	return &l.dx
}

// endBackward implements exampleLayer.
func (l *MaxPool2D) endBackward() { l.dy = nil }

func (l *MaxPool2D) backwardPart(n, slot int) { l.backwardExample(n, 0, true, slot) }

// backwardExample implements exampleLayer.
func (l *MaxPool2D) backwardExample(n, _ int, _ bool, _ int) {
	w, c := l.in.W, l.in.C
	img, y, dy, dx := l.x.Example(n), l.y.Example(n), l.dy.Example(n), l.dx.Example(n)
	// Windows that tile the input write every gradient once; otherwise
	// (overlaps, gaps, or rows and columns no window covers) clear and add.
	tiled := l.stride == l.size && l.out.H*l.size == l.in.H && l.out.W*l.size == l.in.W
	if !tiled {
		clear32(dx)
	}
	for oy := 0; oy < l.out.H; oy++ {
		for ox := 0; ox < l.out.W; ox++ {
			at, o := (oy*l.stride*w+ox*l.stride)*c, (oy*l.out.W+ox)*c
			poolRoute(dx[at:], img[at:], y[o:], dy[o:], c, l.size, w*c, !tiled)
		}
	}
}
