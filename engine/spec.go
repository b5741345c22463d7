package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// Classes is the number of outputs of every model: the digits 0 to 9.
const Classes = 10

// MNISTInput is the shape of an MNIST image.
var MNISTInput = Shape{28, 28, 1}

// Spec describes a sequential model as a person writes it in JSON:
//
//	{"layers": [
//	  {"type": "conv2d", "filters": 32, "kernel": 3, "activation": "relu"},
//	  {"type": "maxpool2d", "size": 2},
//	  {"type": "flatten"},
//	  {"type": "dense", "units": 10, "activation": "softmax"}]}
//
// The input is a 28x28x1 image with pixels scaled to [0, 1]; the last layer
// must be a dense layer with 10 units, the class scores, to which softmax is
// applied (it may say "activation": "softmax", or nothing).
type Spec struct {
	Name   string      `json:"name,omitempty"`
	Layers []LayerSpec `json:"layers"`
}

// LayerSpec is one layer of a Spec. Which fields apply depends on Type:
//
//	conv2d     filters, kernel, stride (1), padding ("valid" or "same"), activation
//	maxpool2d  size (2), stride (= size)
//	dense      units, activation
//	dropout    rate in [0, 1)
//	relu, flatten   none
type LayerSpec struct {
	Type       string  `json:"type"`
	Filters    int     `json:"filters,omitempty"`
	Kernel     Size    `json:"kernel,omitzero"`
	Stride     int     `json:"stride,omitempty"`
	Padding    string  `json:"padding,omitempty"`
	Size       int     `json:"size,omitempty"`
	Units      int     `json:"units,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	Activation string  `json:"activation,omitempty"`
}

// Size is a kernel size: a number for a square kernel (3) or [height, width].
type Size struct{ H, W int }

// UnmarshalJSON accepts 3 or [3, 5].
func (s *Size) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size{n, n}
		return nil
	}
	var hw []int
	if err := json.Unmarshal(b, &hw); err != nil || len(hw) != 2 {
		return fmt.Errorf("kernel must be a number or [height, width], got %s", b)
	}
	*s = Size{hw[0], hw[1]}
	return nil
}

// MarshalJSON writes a square kernel as one number.
func (s Size) MarshalJSON() ([]byte, error) {
	if s.H == s.W {
		return json.Marshal(s.H)
	}
	return json.Marshal([2]int{s.H, s.W})
}

// SpecError is a spec that cannot be built, naming the layer and the reason.
type SpecError struct {
	Index  int    // 0-based position in Spec.Layers; -1 for the spec as a whole
	Type   string // the layer's type as written
	Reason string
}

func (e *SpecError) Error() string {
	if e.Index < 0 {
		return "spec: " + e.Reason
	}
	return fmt.Sprintf("layer %d (%s): %s", e.Index+1, e.Type, e.Reason)
}

// ParseSpec decodes a JSON spec, rejecting unknown fields, and validates it.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("spec: %w", err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("spec: trailing data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Limits on what a spec may ask for, so that a typo cannot allocate
// gigabytes. The reference model is far inside them.
const (
	maxLayers     = 64
	maxFilters    = 1024
	maxUnits      = 16384
	maxKernel     = 28
	maxParamCount = 64 << 20 // 64M weights, 256 MB
)

// Validate checks every layer against the shape it receives and returns a
// *SpecError for the first that cannot work.
func (s Spec) Validate() error {
	_, err := s.shapes()
	return err
}

// shapes returns each layer's output shape, validating as it goes.
func (s Spec) shapes() ([]Shape, error) {
	if len(s.Layers) == 0 {
		return nil, &SpecError{Index: -1, Reason: "no layers"}
	}
	if len(s.Layers) > maxLayers {
		return nil, &SpecError{Index: -1, Reason: fmt.Sprintf("%d layers, at most %d allowed", len(s.Layers), maxLayers)}
	}
	in := MNISTInput
	out := make([]Shape, len(s.Layers))
	params := 0
	flat := false // true once a flatten or dense layer has turned the image into a vector
	for i, l := range s.Layers {
		fail := func(format string, args ...any) error {
			return &SpecError{Index: i, Type: l.Type, Reason: fmt.Sprintf(format, args...)}
		}
		if l.Activation != "" && l.Activation != "relu" && !(l.Activation == "softmax" && l.Type == "dense" && i == len(s.Layers)-1) {
			if l.Activation == "softmax" {
				return nil, fail("softmax is only allowed on the last dense layer")
			}
			return nil, fail("unknown activation %q (want relu)", l.Activation)
		}
		var o Shape
		switch l.Type {
		case "conv2d":
			stride := l.strideOr(1)
			switch {
			case l.Filters <= 0 || l.Filters > maxFilters:
				return nil, fail("filters %d must be in 1..%d", l.Filters, maxFilters)
			case l.Kernel.H <= 0 || l.Kernel.W <= 0 || l.Kernel.H > maxKernel || l.Kernel.W > maxKernel:
				return nil, fail("kernel %dx%d must be between 1x1 and %dx%d", l.Kernel.H, l.Kernel.W, maxKernel, maxKernel)
			case stride <= 0 || stride > maxKernel:
				return nil, fail("stride %d must be in 1..%d", stride, maxKernel)
			case l.Padding != "" && l.Padding != "valid" && l.Padding != "same":
				return nil, fail("padding %q must be \"valid\" or \"same\"", l.Padding)
			case flat:
				return nil, fail("needs an image, but comes after a flatten or dense layer")
			case l.Padding != "same" && (l.Kernel.H > in.H || l.Kernel.W > in.W):
				return nil, fail("kernel %dx%d is larger than its %dx%d input", l.Kernel.H, l.Kernel.W, in.H, in.W)
			}
			oh, _ := convOutSize(in.H, l.Kernel.H, stride, l.Padding == "same")
			ow, _ := convOutSize(in.W, l.Kernel.W, stride, l.Padding == "same")
			o = Shape{oh, ow, l.Filters}
			params += l.Kernel.H*l.Kernel.W*in.C*l.Filters + l.Filters
		case "maxpool2d":
			size := l.Size
			if size == 0 {
				size = 2
			}
			stride := l.strideOr(size)
			switch {
			case flat:
				return nil, fail("needs an image, but comes after a flatten or dense layer")
			case size < 0 || size > maxKernel:
				return nil, fail("size %d must be in 1..%d", size, maxKernel)
			case stride <= 0 || stride > maxKernel:
				return nil, fail("stride %d must be in 1..%d", stride, maxKernel)
			case size > in.H || size > in.W:
				return nil, fail("window %dx%d is larger than its %s input", size, size, in)
			}
			o = Shape{(in.H-size)/stride + 1, (in.W-size)/stride + 1, in.C}
		case "dense":
			if l.Units <= 0 || l.Units > maxUnits {
				return nil, fail("units %d must be in 1..%d", l.Units, maxUnits)
			}
			if !in.Flat() {
				return nil, fail("needs a flat input, but gets %s: add a flatten layer before it", in)
			}
			o = Shape{1, 1, l.Units}
			params += in.C*l.Units + l.Units
			flat = true
		case "dropout":
			if !(l.Rate >= 0 && l.Rate < 1) {
				return nil, fail("rate %g must be in [0, 1)", l.Rate)
			}
			o = in
		case "relu":
			o = in
		case "flatten":
			o = Shape{1, 1, in.Size()}
			flat = true
		default:
			return nil, fail("unknown layer type (want conv2d, maxpool2d, dense, dropout, relu or flatten)")
		}
		if err := l.checkFields(); err != nil {
			return nil, fail("%s", err)
		}
		if params > maxParamCount {
			return nil, fail("the model would have over %d weights", maxParamCount)
		}
		out[i], in = o, o
	}
	last := s.Layers[len(s.Layers)-1]
	if last.Type != "dense" || last.Units != Classes {
		return nil, &SpecError{Index: len(s.Layers) - 1, Type: last.Type, Reason: fmt.Sprintf("the last layer must be dense with %d units (the digits)", Classes)}
	}
	return out, nil
}

func (l LayerSpec) strideOr(def int) int {
	if l.Stride == 0 {
		return def
	}
	return l.Stride
}

// checkFields rejects fields that do not apply to the layer's type, so a
// misplaced "units" on a conv layer is reported rather than ignored.
func (l LayerSpec) checkFields() error {
	allowed := map[string]string{
		"conv2d":    "filters kernel stride padding activation",
		"maxpool2d": "size stride",
		"dense":     "units activation",
		"dropout":   "rate",
		"relu":      "",
		"flatten":   "",
	}[l.Type]
	set := map[string]bool{
		"filters": l.Filters != 0, "kernel": l.Kernel != Size{}, "stride": l.Stride != 0,
		"padding": l.Padding != "", "size": l.Size != 0, "units": l.Units != 0,
		"rate": l.Rate != 0, "activation": l.Activation != "",
	}
	for _, f := range []string{"filters", "kernel", "stride", "padding", "size", "units", "rate", "activation"} {
		if set[f] && !strings.Contains(" "+allowed+" ", " "+f+" ") {
			return fmt.Errorf("field %q does not apply to %s layers", f, l.Type)
		}
	}
	return nil
}

// Build validates spec and constructs its model with Glorot-uniform kernels
// and zero biases drawn from a generator seeded with seed, so that the same
// seed gives the same weights bit for bit.
func Build(spec Spec, seed uint64) (*Model, error) {
	shapes, err := spec.shapes()
	if err != nil {
		return nil, err
	}
	m := &Model{Spec: spec, seed: seed}
	in := MNISTInput
	count := map[string]int{}
	for i, ls := range spec.Layers {
		count[ls.Type]++
		name := fmt.Sprintf("%s%d", shortName[ls.Type], count[ls.Type])
		relu := ls.Activation == "relu"
		var l Layer
		switch ls.Type {
		case "conv2d":
			l = newConv2D(name, in, ls.Filters, ls.Kernel.H, ls.Kernel.W, ls.strideOr(1), ls.Padding == "same", relu)
		case "maxpool2d":
			size := ls.Size
			if size == 0 {
				size = 2
			}
			l = newMaxPool2D(name, in, size, ls.strideOr(size))
		case "dense":
			l = newDense(name, in, ls.Units, relu)
		case "dropout":
			d := &Dropout{name: name, shape: in, rate: float32(ls.Rate)}
			d.reseed(seed, uint64(i))
			l = d
		case "relu":
			l = &ReLU{name: name, shape: in}
		case "flatten":
			l = &Flatten{name: name, in: in, out: shapes[i]}
		}
		if l.OutShape() != shapes[i] {
			panic("engine: built shape disagrees with validated shape for " + name)
		}
		m.Layers = append(m.Layers, l)
		in = shapes[i]
	}
	if s, ok := m.Layers[0].(inputGradSkipper); ok {
		s.skipInputGrad()
	}
	rng := rand.New(rand.NewPCG(seed, 0x676c6f726f74)) // "glorot"
	for _, l := range m.Layers {
		switch l := l.(type) {
		case *Conv2D:
			area := l.kh * l.kw
			glorotUniform(l.weight, area*l.in.C, area*l.out.C, rng)
		case *Dense:
			glorotUniform(l.weight, l.in.Size(), l.out.C, rng)
		}
	}
	m.collect()
	return m, nil
}

var shortName = map[string]string{
	"conv2d": "conv", "maxpool2d": "pool", "dense": "dense",
	"dropout": "dropout", "relu": "relu", "flatten": "flatten",
}

// writeSpecJSON writes s as indented JSON.
func writeSpecJSON(w io.Writer, s Spec) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
