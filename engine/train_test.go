package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"cnnviz/engine/checkpoint"
	"cnnviz/engine/mnist"
)

func loadSubset(t testing.TB) (train, test *mnist.Set) {
	t.Helper()
	train, test, err := mnist.Load(filepath.Join("..", "testdata", "mnist"))
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

// TestTinyLearnsSubset is the accuracy gate: the tiny preset, trained for
// four seeded epochs on the 4,000-image subset, must classify the 1,000 test
// images of the subset well. A broken gradient, optimiser or data path
// leaves it near 10%; a healthy engine reaches 95.2% (seed 1: see the log).
// The bound of 92% leaves room for float32 differences between CPUs.
func TestTinyLearnsSubset(t *testing.T) {
	train, test := loadSubset(t)
	p, _ := LookupPreset("tiny")
	m, err := Build(p.Spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := NewOptimizer(p.Optimizer)
	tr := NewTrainer(m, opt, train, p.BatchSize, 4)
	for !tr.Done() {
		tr.Step()
	}
	ev := Evaluate(m, test, 250)
	t.Logf("test accuracy %.2f%%, loss %.4f", 100*ev.Accuracy, ev.Loss)
	if ev.Accuracy < 0.92 {
		t.Fatalf("test accuracy %.2f%% after 4 epochs on the subset, want ≥ 92%%", 100*ev.Accuracy)
	}
}

// TestTrainingIsReproducible trains twice with one seed, once straight and
// once stopped at an epoch end, checkpointed, reloaded and resumed, and
// requires the same weights bit for bit.
func TestTrainingIsReproducible(t *testing.T) {
	train, _ := loadSubset(t)
	train = train.Slice(0, 600)
	p, _ := LookupPreset("keras-mnist") // has dropout: masks must be reproduced too
	p.Spec.Layers[0].Filters = 4
	p.Spec.Layers[1].Filters = 4
	p.Spec.Layers[5].Units = 16

	straight, _ := Build(p.Spec, 7)
	opt, _ := NewOptimizer(p.Optimizer)
	tr := NewTrainer(straight, opt, train, 100, 2)
	for !tr.Done() {
		tr.Step()
	}

	first, _ := Build(p.Spec, 7)
	opt1, _ := NewOptimizer(p.Optimizer)
	tr1 := NewTrainer(first, opt1, train, 100, 2)
	for {
		if tr1.Step().EpochEnd {
			break
		}
	}
	path := filepath.Join(t.TempDir(), "run.ckpt")
	if err := SaveCheckpoint(path, first, opt1, TrainState{Epoch: 1, BatchSize: 100, Epochs: 2}); err != nil {
		t.Fatal(err)
	}
	resumed, opt2, st, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.Seed != 7 || opt2.Steps() != 6 {
		t.Fatalf("state %+v, optimiser steps %d", st, opt2.Steps())
	}
	tr2 := NewTrainer(resumed, opt2, train, st.BatchSize, st.Epochs)
	tr2.SeekEpoch(st.Epoch)
	for !tr2.Done() {
		tr2.Step()
	}
	for i, p := range straight.Params() {
		if !equal32(p.Value, resumed.Params()[i].Value) {
			t.Fatalf("%s differs between a straight run and a resumed one", p.Name)
		}
	}
}

func TestCheckpointErrors(t *testing.T) {
	p, _ := LookupPreset("tiny")
	m, _ := Build(p.Spec, 3)
	opt, _ := NewOptimizer(p.Optimizer)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ckpt")
	if err := SaveCheckpoint(good, m, opt, TrainState{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)

	corrupt := append([]byte(nil), data...)
	corrupt[len(corrupt)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, corrupt, 0o644)
	if _, _, _, err := LoadCheckpoint(bad); !errors.Is(err, checkpoint.ErrChecksum) {
		t.Errorf("corrupt file: %v, want a checksum error", err)
	}
	os.WriteFile(bad, data[:len(data)-100], 0o644)
	if _, _, _, err := LoadCheckpoint(bad); !errors.Is(err, checkpoint.ErrTruncated) && !errors.Is(err, checkpoint.ErrChecksum) {
		t.Errorf("truncated file: %v", err)
	}

	// A well-formed file whose tensors do not fit the spec.
	f, _ := Checkpoint(m, opt, TrainState{})
	f.Tensors[0].Shape = []int{f.Tensors[0].Shape[0] * f.Tensors[0].Shape[1] * f.Tensors[0].Shape[2] * f.Tensors[0].Shape[3]}
	if _, _, _, err := Restore(f); err == nil {
		t.Error("a tensor of the wrong shape was accepted")
	}
	f, _ = Checkpoint(m, opt, TrainState{})
	f.Tensors = f.Tensors[1:]
	if _, _, _, err := Restore(f); err == nil {
		t.Error("a missing tensor was accepted")
	}
}

// TestFusedChainsMatchLayers checks that a batch run image by image through
// the model's chains of example layers gives the bits of the same batch
// run layer by layer: logits, every gradient, and the input gradient of
// each layer.
func TestFusedChainsMatchLayers(t *testing.T) {
	p, _ := LookupPreset("keras-mnist")
	p.Spec.Layers[0].Filters, p.Spec.Layers[1].Filters, p.Spec.Layers[5].Units = 8, 16, 32
	// A padded, strided convolution too.
	p.Spec.Layers = append([]LayerSpec{{Type: "conv2d", Filters: 3, Kernel: Size{4, 4}, Stride: 1, Padding: "same", Activation: "relu"}}, p.Spec.Layers...)
	n := 4*procs() + 3
	run := func(fused bool) (logits []float32, grads [][]float32) {
		m, err := Build(p.Spec, 3)
		if err != nil {
			t.Fatal(err)
		}
		m.ReseedDropout(0)
		rng := rand.New(rand.NewPCG(5, 5))
		x := NewTensor(n, MNISTInput)
		randomize(x.Data, rng)
		var out *Tensor
		if fused {
			out = m.Forward(x, true)
		} else {
			out = x
			for _, l := range m.Layers {
				out = l.Forward(out, true)
			}
		}
		logits = append([]float32(nil), out.Data...)
		d := &Tensor{N: n, Shape: out.Shape, Data: make([]float32, len(out.Data))}
		labels := make([]uint8, n)
		SoftmaxCrossEntropy(out, labels, d.Data)
		m.ZeroGrad()
		if fused {
			m.Backward(d)
		} else {
			g := d
			for i := len(m.Layers) - 1; i >= 0 && g != nil; i-- {
				g = m.Layers[i].Backward(g)
				if g != nil {
					grads = append(grads, append([]float32(nil), g.Data...))
				}
			}
		}
		for _, p := range m.Params() {
			grads = append(grads, append([]float32(nil), p.Grad...))
		}
		return logits, grads
	}
	l1, g1 := run(true)
	l2, g2 := run(false)
	sameBits(t, "logits", l1, l2)
	g2 = g2[len(g2)-len(g1):] // the fused run keeps no intermediate gradients
	for i := range g1 {
		sameBits(t, fmt.Sprint("gradient ", i), g1[i], g2[i])
	}
}
