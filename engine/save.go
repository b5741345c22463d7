package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"cnnviz/engine/checkpoint"
)

// TrainState is where a training run stands: everything besides the weights
// and optimiser slots that a checkpoint needs to resume it exactly. It is
// stored as the checkpoint's meta JSON.
type TrainState struct {
	Seed           uint64          `json:"seed"`
	Epoch          int             `json:"epoch"` // epochs completed; training resumes at this 0-based epoch
	Batch          int             `json:"batch"` // batches of that epoch already trained (0 at an epoch end)
	BatchSize      int             `json:"batchSize"`
	Epochs         int             `json:"epochs"` // epochs planned
	Optimizer      OptimizerConfig `json:"optimizer"`
	OptimizerSteps int64           `json:"optimizerSteps"`
}

// Checkpoint bundles a model, its optimiser and the training state into a
// checkpoint file: the spec as JSON, the state as meta JSON, one tensor per
// parameter ("conv1.weight") and one per optimiser slot
// ("conv1.weight/adadelta.accum").
func Checkpoint(m *Model, opt Optimizer, st TrainState) (*checkpoint.File, error) {
	spec, err := json.Marshal(m.Spec)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: encoding spec: %w", err)
	}
	st.Seed = m.seed
	if opt != nil {
		st.Optimizer, st.OptimizerSteps = opt.Config(), opt.Steps()
	}
	meta, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: encoding state: %w", err)
	}
	f := &checkpoint.File{Spec: spec, Meta: meta}
	for _, p := range m.params {
		f.Tensors = append(f.Tensors, checkpoint.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Value})
	}
	if opt != nil {
		slots := opt.Slots()
		names := make([]string, 0, len(slots))
		for k := range slots {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			f.Tensors = append(f.Tensors, checkpoint.Tensor{Name: k, Shape: []int{len(slots[k])}, Data: slots[k]})
		}
	}
	return f, nil
}

// SaveCheckpoint writes m, opt and st to path atomically: a crash leaves
// either the old file or the new one.
func SaveCheckpoint(path string, m *Model, opt Optimizer, st TrainState) error {
	f, err := Checkpoint(m, opt, st)
	if err != nil {
		return err
	}
	return checkpoint.Save(path, f)
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint and rebuilds
// the model, its optimiser (nil if the file has none) and the state.
func LoadCheckpoint(path string) (*Model, Optimizer, TrainState, error) {
	f, err := checkpoint.Load(path)
	if err != nil {
		return nil, nil, TrainState{}, err
	}
	return Restore(f)
}

// Restore rebuilds a model, optimiser and state from a checkpoint file. Every
// parameter must be present with its exact shape; anything inconsistent is
// an error that names the tensor.
func Restore(f *checkpoint.File) (*Model, Optimizer, TrainState, error) {
	var st TrainState
	fail := func(format string, args ...any) (*Model, Optimizer, TrainState, error) {
		return nil, nil, TrainState{}, fmt.Errorf("checkpoint: "+format, args...)
	}
	spec, err := ParseSpec(f.Spec)
	if err != nil {
		return fail("model spec: %w", err)
	}
	if err := json.Unmarshal(f.Meta, &st); err != nil {
		return fail("training state: %w", err)
	}
	m, err := Build(spec, st.Seed)
	if err != nil {
		return fail("%w", err)
	}
	byName := map[string]checkpoint.Tensor{}
	for _, t := range f.Tensors {
		byName[t.Name] = t
	}
	sizes := map[string]int{}
	for _, p := range m.params {
		t, ok := byName[p.Name]
		if !ok {
			return fail("missing tensor %q", p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return fail("tensor %q has shape %v, the model needs %v", p.Name, t.Shape, p.Shape)
		}
		copy(p.Value, t.Data)
		sizes[p.Name] = len(p.Value)
		delete(byName, p.Name)
	}
	if st.Optimizer.Name == "" {
		if len(byName) > 0 {
			return fail("optimiser slots present but no optimiser named")
		}
		return m, nil, st, nil
	}
	opt, err := NewOptimizer(st.Optimizer)
	if err != nil {
		return fail("%w", err)
	}
	slots := map[string][]float32{}
	for name, t := range byName {
		param, _, ok := strings.Cut(name, "/")
		if !ok || sizes[param] == 0 {
			return fail("tensor %q belongs to no parameter", name)
		}
		if len(t.Data) != sizes[param] {
			return fail("optimiser slot %q has %d values, its parameter %d", name, len(t.Data), sizes[param])
		}
		slots[name] = t.Data
	}
	if err := opt.Restore(st.OptimizerSteps, slots); err != nil {
		return fail("%w", err)
	}
	return m, opt, st, nil
}
