package engine

import (
	"math"
	"strings"
	"testing"
)

// TestOptimizerSteps checks two updates of each optimiser on one parameter
// against values computed by hand (in float64, with the formulas quoted on
// each type). Two steps, with gradients of different sign, catch a state
// that is not carried over as well as a wrong first step.
func TestOptimizerSteps(t *testing.T) {
	cases := []struct {
		cfg  OptimizerConfig
		want [2]float64
	}{
		// v = -0.1*0.5 = -0.05, p = 0.95; v = 0.9*(-0.05) - 0.1*(-1) = 0.055, p = 1.005
		{OptimizerConfig{Name: "sgd", LearningRate: 0.1, Momentum: 0.9}, [2]float64{0.95, 1.005}},
		// no momentum: p = 1 - 0.1*0.5 = 0.95; p = 0.95 + 0.1 = 1.05
		{OptimizerConfig{Name: "sgd", LearningRate: 0.1}, [2]float64{0.95, 1.05}},
		// m̂ = 0.5, v̂ = 0.25: p = 1 - 0.001*0.5/(0.5+1e-7); then m̂ = -0.055/0.19, v̂ = 0.00124975/0.001999
		{OptimizerConfig{Name: "adam"}, [2]float64{0.9990000001999999, 0.9993661036807339}},
		// a = 0.0125, Δ = 0.5*√1e-7/√(0.0125+1e-7); then a = 0.061875, d = 0.05Δ₁²
		{OptimizerConfig{Name: "adadelta"}, [2]float64{0.9985857920944472, 1.0003836533458252}},
	}
	for _, tc := range cases {
		t.Run(tc.cfg.Name, func(t *testing.T) {
			opt, err := NewOptimizer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := Param{Name: "w", Value: []float32{1}, Grad: []float32{0.5}}
			for i, g := range []float32{0.5, -1} {
				p.Grad[0] = g
				opt.Step([]Param{p})
				// float32 arithmetic: relative error ~1e-7 per operation.
				if got := float64(p.Value[0]); math.Abs(got-tc.want[i]) > 1e-6 {
					t.Errorf("step %d: got %.9f, want %.9f", i+1, got, tc.want[i])
				}
			}
			if opt.Steps() != 2 {
				t.Errorf("Steps() = %d", opt.Steps())
			}
		})
	}
}

func TestOptimizerConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  OptimizerConfig
		want string // substring of the error, "" for valid
	}{
		{OptimizerConfig{Name: "adadelta"}, ""},
		{OptimizerConfig{Name: "rmsprop"}, "unknown"},
		{OptimizerConfig{Name: "sgd", LearningRate: -1}, "learningRate"},
		{OptimizerConfig{Name: "sgd", LearningRate: math.NaN()}, "learningRate"},
		{OptimizerConfig{Name: "sgd", LearningRate: math.Inf(1)}, "learningRate"},
		{OptimizerConfig{Name: "sgd", Momentum: 1}, "momentum"},
		{OptimizerConfig{Name: "adam", Beta1: 1.5}, "beta1"},
		{OptimizerConfig{Name: "adadelta", Rho: -0.1}, "rho"},
	}
	for _, tc := range cases {
		_, err := NewOptimizer(tc.cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one naming %q", tc.cfg, err, tc.want)
		}
	}
}

func TestOptimizerRestore(t *testing.T) {
	opt, _ := NewOptimizer(OptimizerConfig{Name: "adam"})
	if err := opt.Restore(3, map[string][]float32{"w/adam.m": {1}, "w/adam.v": {2}}); err != nil {
		t.Fatal(err)
	}
	if opt.Steps() != 3 || opt.Slots()["w/adam.v"][0] != 2 {
		t.Errorf("restore lost state: %d %v", opt.Steps(), opt.Slots())
	}
	if err := opt.Restore(0, map[string][]float32{"w/sgd.velocity": {1}}); err == nil {
		t.Error("adam accepted an sgd slot")
	}
}
