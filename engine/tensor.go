package engine

import "fmt"

// Shape is the shape of one example: height, width and channels. A flat
// vector of F values is 1x1xF, so Dense layers and image layers share one
// type and Flatten costs nothing in NHWC.
type Shape struct {
	H, W, C int
}

// Size is the number of values in one example.
func (s Shape) Size() int { return s.H * s.W * s.C }

// Flat reports whether the shape is a vector (1x1xF).
func (s Shape) Flat() bool { return s.H == 1 && s.W == 1 }

// String formats the shape as the article's tables do: 24x24x64, or 128 for
// a vector.
func (s Shape) String() string {
	if s.Flat() {
		return fmt.Sprint(s.C)
	}
	return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C)
}

// Tensor is a batch of N examples of one Shape, stored NHWC in a flat slice.
type Tensor struct {
	N     int
	Shape Shape
	Data  []float32 // len == N * Shape.Size()
}

// NewTensor allocates a zeroed tensor.
func NewTensor(n int, s Shape) *Tensor {
	return &Tensor{N: n, Shape: s, Data: make([]float32, n*s.Size())}
}

// Example returns the values of example i, sharing memory with t.
func (t *Tensor) Example(i int) []float32 {
	sz := t.Shape.Size()
	return t.Data[i*sz : (i+1)*sz]
}

// resize makes t hold n examples of shape s, reusing its memory when it is
// large enough. Contents are not cleared. Layers call it on their own output
// buffers so that the steady state allocates nothing.
func (t *Tensor) resize(n int, s Shape) {
	want := n * s.Size()
	if cap(t.Data) < want {
		t.Data = make([]float32, want)
	}
	t.Data = t.Data[:want]
	t.N, t.Shape = n, s
}

// grow returns buf resliced to n values, reallocating only when too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

func clear32(s []float32) {
	for i := range s {
		s[i] = 0
	}
}

// addTo adds s to d element by element.
func addTo(d, s []float32) {
	s = s[:len(d)]
	for i := range d {
		d[i] += s[i]
	}
}
