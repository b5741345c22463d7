package sessions

import (
	"errors"
	"fmt"
	"strings"

	"cnnviz/engine"
)

// Settings is what a person asks for when creating a session (JSON,
// camelCase). Omitted fields take the preset's defaults.
type Settings struct {
	Name         string             `json:"name,omitempty"`
	Preset       string             `json:"preset,omitempty"`  // default "keras-mnist"
	Layers       []engine.LayerSpec `json:"layers,omitempty"`  // a custom model instead of the preset's
	Dataset      string             `json:"dataset,omitempty"` // "mnist" (the only one today)
	Optimizer    string             `json:"optimizer,omitempty"`
	LearningRate float64            `json:"learningRate,omitempty"`
	Momentum     float64            `json:"momentum,omitempty"`
	BatchSize    int                `json:"batchSize,omitempty"`
	Epochs       int                `json:"epochs,omitempty"`
	Seed         *uint64            `json:"seed,omitempty"`    // default 1
	Dropout      *bool              `json:"dropout,omitempty"` // false removes the dropout layers
}

// Config is a session's settings resolved against its preset and
// validated: everything training needs.
type Config struct {
	Name      string                 `json:"name"`
	Preset    string                 `json:"preset"`
	Dataset   string                 `json:"dataset"`
	Spec      engine.Spec            `json:"spec"`
	Optimizer engine.OptimizerConfig `json:"optimizer"`
	BatchSize int                    `json:"batchSize"`
	Epochs    int                    `json:"epochs"`
	Seed      uint64                 `json:"seed"`
	Dropout   bool                   `json:"dropout"`
}

// FieldError is an invalid setting, naming the field as the JSON does.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Limits on settings, so that one request cannot tie the server up for
// days or allocate what it does not have.
const (
	MaxEpochs    = 100
	MaxBatchSize = 1024
)

// Resolve fills defaults from the preset and validates every field. Errors
// are *FieldError.
func (s Settings) Resolve() (Config, error) {
	presetName := s.Preset
	if presetName == "" {
		presetName = "keras-mnist"
	}
	p, err := engine.LookupPreset(presetName)
	if err != nil {
		return Config{}, &FieldError{"preset", err.Error()}
	}
	c := Config{
		Name: strings.TrimSpace(s.Name), Preset: p.Name, Dataset: s.Dataset, Spec: p.Spec,
		Optimizer: p.Optimizer, BatchSize: p.BatchSize, Epochs: p.Epochs, Seed: 1, Dropout: true,
	}
	if len(c.Name) > 80 {
		return Config{}, &FieldError{"name", "at most 80 characters"}
	}
	if c.Dataset == "" {
		c.Dataset = "mnist"
	}
	if c.Dataset != "mnist" {
		return Config{}, &FieldError{"dataset", fmt.Sprintf("unknown dataset %q (want mnist)", c.Dataset)}
	}
	if s.Layers != nil {
		c.Spec = engine.Spec{Name: "custom", Layers: s.Layers}
		if c.Name == "" {
			c.Name = "custom model"
		}
	}
	if err := c.Spec.Validate(); err != nil {
		var se *engine.SpecError
		if errors.As(err, &se) && se.Index >= 0 {
			return Config{}, &FieldError{fmt.Sprintf("layers[%d]", se.Index), err.Error()}
		}
		return Config{}, &FieldError{"layers", err.Error()}
	}
	if s.Optimizer != "" && s.Optimizer != c.Optimizer.Name {
		c.Optimizer = engine.OptimizerConfig{Name: s.Optimizer}
	}
	if s.LearningRate != 0 {
		c.Optimizer.LearningRate = s.LearningRate
	}
	if s.Momentum != 0 {
		c.Optimizer.Momentum = s.Momentum
	}
	c.Optimizer = c.Optimizer.WithDefaults()
	if err := c.Optimizer.Validate(); err != nil {
		field := "optimizer"
		switch {
		case strings.Contains(err.Error(), "learningRate"):
			field = "learningRate"
		case strings.Contains(err.Error(), "momentum"):
			field = "momentum"
		}
		return Config{}, &FieldError{field, err.Error()}
	}
	if s.BatchSize != 0 {
		c.BatchSize = s.BatchSize
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		return Config{}, &FieldError{"batchSize", fmt.Sprintf("%d must be in 1..%d", c.BatchSize, MaxBatchSize)}
	}
	if s.Epochs != 0 {
		c.Epochs = s.Epochs
	}
	if c.Epochs < 1 || c.Epochs > MaxEpochs {
		return Config{}, &FieldError{"epochs", fmt.Sprintf("%d must be in 1..%d", c.Epochs, MaxEpochs)}
	}
	if s.Seed != nil {
		c.Seed = *s.Seed
	}
	if s.Dropout != nil && !*s.Dropout {
		c.Dropout = false
		layers := make([]engine.LayerSpec, 0, len(c.Spec.Layers))
		for _, l := range c.Spec.Layers {
			if l.Type != "dropout" {
				layers = append(layers, l)
			}
		}
		c.Spec.Layers = layers
	}
	if c.Name == "" {
		c.Name = c.Preset
	}
	return c, nil
}
