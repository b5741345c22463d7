package engine

// Layer is one stage of a sequential model. It is built for a fixed input
// shape and keeps what Forward needs for Backward (its input, a mask, the
// positions of maxima).
type Layer interface {
	// Name is unique within a model ("conv1", "pool1") and prefixes the names
	// of its parameters ("conv1.weight").
	Name() string
	// InShape and OutShape are the shapes of one example in and out.
	InShape() Shape
	OutShape() Shape
	// Forward computes the layer's output for a batch. training switches
	// dropout on. The returned tensor is owned by the layer and reused by
	// the next call.
	Forward(x *Tensor, training bool) *Tensor
	// Backward takes the gradient of the loss with respect to the last
	// Forward's output, adds the gradients of the parameters to their Grad
	// slices and returns the gradient with respect to the input (owned by the
	// layer), or nil when the layer was told its input needs none.
	Backward(dy *Tensor) *Tensor
	// Params lists the learnable parameters, empty for layers without any.
	Params() []Param
}

// Param is one learnable tensor with its gradient. Names are stable
// ("conv1.weight", "dense2.bias") and double as checkpoint keys.
type Param struct {
	Name  string
	Shape []int // Keras order: conv (KH, KW, C, OC), dense (in, out), bias (out)
	Value []float32
	Grad  []float32
}

// inputGradSkipper is implemented by layers that can skip computing the
// gradient of their input. The model tells its first layer to, since nothing
// consumes the gradient of the images; for conv1 that saves a GEMM and a
// col2im per batch.
type inputGradSkipper interface {
	skipInputGrad()
}

func checkInput(l Layer, x *Tensor) {
	if x.Shape != l.InShape() {
		panic("engine: " + l.Name() + " input shape " + x.Shape.String() + ", built for " + l.InShape().String())
	}
}

// exampleLayer is a layer whose passes split into independent examples.
// The model runs consecutive example layers image by image in one parallel
// task (see Model.Forward), so that an image's maps go from one layer to
// the next while they are in cache; each layer's own Forward and Backward
// run the same per-example code, so fused or not, the results are the
// same bits.
//
// A pass begins on the whole batch (sizing outputs, preparing weights),
// then computes examples in any order and on any goroutine; backward
// examples come in parts (see backwardParts), in order within a part, and
// the pass ends once all parts are done (adding up per-part sums).
type exampleLayer interface {
	Layer
	// beginForward prepares a pass over x and returns the output tensor,
	// which forwardExample(i, slot) then fills example by example.
	beginForward(x *Tensor, training bool) *Tensor
	forwardExample(i, slot int)
	// beginBackward prepares a pass for the output gradient dy and returns
	// the input gradient's tensor (nil if the layer computes none), which
	// backwardExample fills. first tells the first example of its part.
	beginBackward(dy *Tensor) *Tensor
	backwardExample(i, part int, first bool, slot int)
	endBackward()
}

// backwardParts is the number of groups of examples whose weight
// gradients are summed separately, then added in order: a constant, so
// that the sums do not depend on the number of CPUs. Part p holds examples
// [p*n/parts, (p+1)*n/parts).
func backwardParts(n int) int { return min(n, 8) }
