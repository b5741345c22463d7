package engine

import (
	"fmt"
	"sort"
	"strings"
)

// Preset is a named model with the training settings it was designed for.
type Preset struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Spec        Spec            `json:"spec"`
	Optimizer   OptimizerConfig `json:"optimizer"`
	BatchSize   int             `json:"batchSize"`
	Epochs      int             `json:"epochs"`
}

var presets = map[string]Preset{
	"keras-mnist": {
		Name: "keras-mnist",
		Description: "The reference model of the Keras MNIST example: two 3x3 convolutions, " +
			"max pooling, dropout and two dense layers; 99.25% test accuracy after 12 epochs.",
		Spec: Spec{Name: "keras-mnist", Layers: []LayerSpec{
			{Type: "conv2d", Filters: 32, Kernel: Size{3, 3}, Activation: "relu"},
			{Type: "conv2d", Filters: 64, Kernel: Size{3, 3}, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "dropout", Rate: 0.25},
			{Type: "flatten"},
			{Type: "dense", Units: 128, Activation: "relu"},
			{Type: "dropout", Rate: 0.5},
			{Type: "dense", Units: 10, Activation: "softmax"},
		}},
		Optimizer: OptimizerConfig{Name: "adadelta", LearningRate: 1.0, Rho: 0.95, Epsilon: 1e-7},
		BatchSize: 128,
		Epochs:    12,
	},
	"lenet5": {
		Name: "lenet5",
		Description: "LeCun et al.'s LeNet-5 (1998) with ReLU and max pooling: 6 and 16 " +
			"5x5 filters, then 120, 84 and 10 units.",
		Spec: Spec{Name: "lenet5", Layers: []LayerSpec{
			{Type: "conv2d", Filters: 6, Kernel: Size{5, 5}, Padding: "same", Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "conv2d", Filters: 16, Kernel: Size{5, 5}, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "flatten"},
			{Type: "dense", Units: 120, Activation: "relu"},
			{Type: "dense", Units: 84, Activation: "relu"},
			{Type: "dense", Units: 10, Activation: "softmax"},
		}},
		Optimizer: OptimizerConfig{Name: "adam", LearningRate: 0.001},
		BatchSize: 64,
		Epochs:    5,
	},
	"tiny": {
		Name: "tiny",
		Description: "A small, fast model for a first look: 8 and 16 3x3 filters with pooling " +
			"and one dense layer; about 98% after one epoch, in well under a minute on 2 cores.",
		Spec: Spec{Name: "tiny", Layers: []LayerSpec{
			{Type: "conv2d", Filters: 8, Kernel: Size{3, 3}, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "conv2d", Filters: 16, Kernel: Size{3, 3}, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "flatten"},
			{Type: "dense", Units: 10, Activation: "softmax"},
		}},
		Optimizer: OptimizerConfig{Name: "adam", LearningRate: 0.002},
		BatchSize: 32,
		Epochs:    1,
	},
}

// Presets returns every preset, sorted by name.
func Presets() []Preset {
	out := make([]Preset, 0, len(presets))
	for _, p := range presets {
		out = append(out, p.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupPreset returns the named preset, or an error listing the known ones.
func LookupPreset(name string) (Preset, error) {
	p, ok := presets[name]
	if !ok {
		names := make([]string, 0, len(presets))
		for n := range presets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Preset{}, fmt.Errorf("unknown preset %q (want one of %s)", name, strings.Join(names, ", "))
	}
	return p.clone(), nil
}

// clone copies the layer list so callers cannot edit the shared presets.
func (p Preset) clone() Preset {
	p.Spec.Layers = append([]LayerSpec(nil), p.Spec.Layers...)
	return p
}
