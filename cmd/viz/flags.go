package main

import (
	"flag"
	"fmt"
	"os"

	"cnnviz/engine"
	"cnnviz/engine/mnist"
)

// modelFlags chooses a model: a preset, or a JSON spec file.
type modelFlags struct {
	preset   string
	specFile string
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.preset, "preset", "keras-mnist", "model preset: keras-mnist, lenet5 or tiny")
	fs.StringVar(&m.specFile, "spec", "", "JSON model spec file (overrides -preset's layers)")
}

// spec returns the chosen model and the preset it starts from (for default
// training settings).
func (m *modelFlags) spec() (engine.Spec, engine.Preset, error) {
	p, err := engine.LookupPreset(m.preset)
	if err != nil {
		return engine.Spec{}, engine.Preset{}, err
	}
	if m.specFile == "" {
		return p.Spec, p, nil
	}
	data, err := os.ReadFile(m.specFile)
	if err != nil {
		return engine.Spec{}, engine.Preset{}, err
	}
	spec, err := engine.ParseSpec(data)
	if err != nil {
		return engine.Spec{}, engine.Preset{}, fmt.Errorf("%s: %w", m.specFile, err)
	}
	return spec, p, nil
}

// loadMNIST finds the data set (the -data folder, else the GoMNIST module)
// and loads it, returning the folder it came from.
func loadMNIST(dataDir string) (dir string, train, test *mnist.Set, err error) {
	if dir, err = mnist.Locate(dataDir); err != nil {
		return "", nil, nil, err
	}
	train, test, err = mnist.Load(dir)
	return dir, train, test, err
}
