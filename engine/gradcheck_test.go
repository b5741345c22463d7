package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference gradient checks. Every layer is tested the same way: a
// scalar loss L = Σ y·r with a fixed random r, so ∂L/∂y = r, and each
// analytic gradient (input and parameters) is compared with the central
// difference (L(v+h) − L(v−h)) / 2h.
//
// Tolerances: the layers compute in float32 (relative rounding ~6e-8), and
// L sums a few hundred outputs of size ~1, so L carries an absolute error of
// ~1e-5; divided by 2h = 2e-2 that is ~5e-4 in the estimate. Convolution,
// pooling and dense layers are piecewise linear, so away from kinks the
// central difference has no truncation error. We therefore accept
// |analytic − numeric| ≤ 2e-3 + 2e-3·|numeric|.
//
// At a kink (a ReLU input or two pooled values within h of each other) the
// difference quotient straddles two linear pieces and means nothing; we
// detect that by comparing the estimates at h and h/2, which agree exactly
// on a linear piece, and skip such coordinates (and count them, so a test
// that skips everything fails).
const (
	gradStep = 1e-2
	gradAtol = 2e-3
	gradRtol = 2e-3
)

func randomize(v []float32, rng *rand.Rand) {
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
}

type gradCase struct {
	name  string
	layer func() Layer
	n     int
}

func TestLayerGradients(t *testing.T) {
	cases := []gradCase{
		{"conv3x3 valid", func() Layer { return newConv2D("c", Shape{6, 5, 2}, 3, 3, 3, 1, false, false) }, 2},
		{"conv3x3 same stride2 odd", func() Layer { return newConv2D("c", Shape{7, 6, 3}, 4, 3, 3, 2, true, false) }, 2},
		{"conv5x5 same relu", func() Layer { return newConv2D("c", Shape{6, 6, 1}, 2, 5, 5, 1, true, true) }, 2},
		{"conv2x3 stride2 valid", func() Layer { return newConv2D("c", Shape{7, 8, 2}, 3, 2, 3, 2, false, false) }, 3},
		{"conv1x1", func() Layer { return newConv2D("c", Shape{4, 4, 3}, 2, 1, 1, 1, false, false) }, 2},
		{"conv4x4 same stride3", func() Layer { return newConv2D("c", Shape{5, 7, 2}, 2, 4, 4, 3, true, false) }, 2},
		{"maxpool2", func() Layer { return newMaxPool2D("p", Shape{6, 6, 3}, 2, 2) }, 2},
		{"maxpool3 stride2 odd", func() Layer { return newMaxPool2D("p", Shape{7, 8, 2}, 3, 2) }, 2},
		{"dense", func() Layer { return newDense("d", Shape{1, 1, 12}, 5, false) }, 3},
		{"dense relu", func() Layer { return newDense("d", Shape{1, 1, 12}, 7, true) }, 4},
		{"relu", func() Layer { return &ReLU{name: "r", shape: Shape{3, 3, 2}} }, 2},
		{"dropout", func() Layer { return &Dropout{name: "dr", shape: Shape{4, 4, 2}, rate: 0.4} }, 2},
		{"flatten", func() Layer { return &Flatten{name: "f", in: Shape{3, 2, 2}, out: Shape{1, 1, 12}} }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLayerGradients(t, tc.layer(), tc.n) })
	}
}

func checkLayerGradients(t *testing.T, l Layer, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	params := l.Params()
	for _, p := range params {
		randomize(p.Value, rng)
	}
	x := NewTensor(n, l.InShape())
	randomize(x.Data, rng)
	r := make([]float32, n*l.OutShape().Size())
	randomize(r, rng)

	forward := func() *Tensor {
		if d, ok := l.(*Dropout); ok {
			d.reseed(7, 7) // the same mask on every pass
		}
		return l.Forward(x, true)
	}
	loss := func() float64 {
		var s float64
		for i, v := range forward().Data {
			s += float64(v) * float64(r[i])
		}
		return s
	}

	// Analytic gradients.
	for _, p := range params {
		clear32(p.Grad)
	}
	forward()
	dy := &Tensor{N: n, Shape: l.OutShape(), Data: append([]float32(nil), r...)}
	dxT := l.Backward(dy)
	if dxT == nil {
		t.Fatal("Backward returned no input gradient")
	}
	dx := append([]float32(nil), dxT.Data...)

	checked, skipped := 0, 0
	check := func(what string, v []float32, i int, analytic float32) {
		numeric := func(h float32) float64 {
			old := v[i]
			v[i] = old + h
			lp := loss()
			v[i] = old - h
			lm := loss()
			v[i] = old
			return (lp - lm) / float64(2*h)
		}
		d1, d2 := numeric(gradStep), numeric(gradStep/2)
		if math.Abs(d1-d2) > gradAtol+gradRtol*math.Abs(d1) {
			skipped++ // a kink between v-h and v+h
			return
		}
		checked++
		if diff := math.Abs(float64(analytic) - d1); diff > gradAtol+gradRtol*math.Abs(d1) {
			t.Errorf("%s[%d]: analytic %.6f, numeric %.6f", what, i, analytic, d1)
		}
	}
	for i := range x.Data {
		check("input", x.Data, i, dx[i])
	}
	for _, p := range params {
		for i := range p.Value {
			check(p.Name, p.Value, i, p.Grad[i])
		}
	}
	if checked == 0 || skipped > checked/10 {
		t.Fatalf("checked %d coordinates, skipped %d at kinks", checked, skipped)
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := NewTensor(4, Shape{1, 1, Classes})
	randomize(logits.Data, rng)
	for i := range logits.Data {
		logits.Data[i] *= 4
	}
	labels := []uint8{0, 3, 9, 3}
	d := make([]float32, len(logits.Data))
	SoftmaxCrossEntropy(logits, labels, d)
	scratch := make([]float32, len(d))
	for i := range logits.Data {
		old := logits.Data[i]
		logits.Data[i] = old + 1e-2
		lp, _ := SoftmaxCrossEntropy(logits, labels, scratch)
		logits.Data[i] = old - 1e-2
		lm, _ := SoftmaxCrossEntropy(logits, labels, scratch)
		logits.Data[i] = old
		// The loss is smooth; the central difference's truncation error is
		// O(h²·L''') ≈ 1e-5 here, below the float32 noise.
		numeric := float64(lp-lm) / 2e-2
		if math.Abs(numeric-float64(d[i])) > 1e-3 {
			t.Errorf("dlogits[%d]: analytic %.6f, numeric %.6f", i, d[i], numeric)
		}
	}
}

func TestSoftmaxCrossEntropyValues(t *testing.T) {
	// Equal logits: softmax is uniform and the loss is log(10).
	logits := NewTensor(1, Shape{1, 1, Classes})
	d := make([]float32, Classes)
	loss, _ := SoftmaxCrossEntropy(logits, []uint8{4}, d)
	if math.Abs(float64(loss)-math.Log(10)) > 1e-6 {
		t.Errorf("loss %v, want log 10", loss)
	}
	// Huge logits must not overflow.
	logits.Data[7] = 1e4
	loss, correct := SoftmaxCrossEntropy(logits, []uint8{7}, d)
	if loss != 0 || correct != 1 || math.IsNaN(float64(d[0])) {
		t.Errorf("loss %v correct %d d %v", loss, correct, d)
	}
}

// TestModelGradient checks a whole small model end to end, so that the
// wiring between layers (Flatten's relabelling, the first layer skipping its
// input gradient, fused activations) is covered too.
func TestModelGradient(t *testing.T) {
	spec := Spec{Layers: []LayerSpec{
		{Type: "conv2d", Filters: 2, Kernel: Size{5, 5}, Stride: 3, Activation: "relu"},
		{Type: "conv2d", Filters: 3, Kernel: Size{3, 3}, Padding: "same", Activation: "relu"},
		{Type: "maxpool2d", Size: 2},
		{Type: "flatten"},
		{Type: "dense", Units: 6, Activation: "relu"},
		{Type: "dense", Units: 10},
	}}
	m, err := Build(spec, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	x := NewTensor(3, MNISTInput)
	randomize(x.Data, rng)
	labels := []uint8{1, 5, 9}
	loss := func() float64 {
		logits := m.Forward(x, false)
		d := make([]float32, len(logits.Data))
		l, _ := SoftmaxCrossEntropy(logits, labels, d)
		return float64(l)
	}
	logits := m.Forward(x, false)
	d := &Tensor{N: 3, Shape: logits.Shape, Data: make([]float32, len(logits.Data))}
	SoftmaxCrossEntropy(logits, labels, d.Data)
	m.ZeroGrad()
	m.Backward(d)
	// A first-layer weight feeds every output pixel, so a step of 1e-2 would
	// cross dozens of ReLU kinks, each bending the quotient a little; 1e-3
	// crosses few, and float32 noise in the loss (~2e-7) over 2e-3 stays
	// near 1e-4.
	checked := 0
	for _, p := range m.Params() {
		for i := 0; i < len(p.Value); i += 1 + len(p.Value)/40 {
			old := p.Value[i]
			p.Value[i] = old + 1e-3
			lp := loss()
			p.Value[i] = old - 1e-3
			lm := loss()
			p.Value[i] = old + 5e-4
			lp2 := loss()
			p.Value[i] = old - 5e-4
			lm2 := loss()
			p.Value[i] = old
			n1, n2 := (lp-lm)/2e-3, (lp2-lm2)/1e-3
			if math.Abs(n1-n2) > 1e-3 {
				continue // a ReLU or pooling kink
			}
			checked++
			if math.Abs(n1-float64(p.Grad[i])) > 1e-3+1e-2*math.Abs(n1) {
				t.Errorf("%s[%d]: analytic %.6f, numeric %.6f", p.Name, i, p.Grad[i], n1)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d coordinates checked", checked)
	}
}
