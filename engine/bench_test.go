package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchModel builds a preset and a batch of random images for benchmarks.
func benchModel(b *testing.B, preset string, n int) (*Model, Optimizer, *Tensor, []uint8) {
	b.Helper()
	p, err := LookupPreset(preset)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Build(p.Spec, 1)
	if err != nil {
		b.Fatal(err)
	}
	opt, err := NewOptimizer(p.Optimizer)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	x := NewTensor(n, MNISTInput)
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	labels := make([]uint8, n)
	for i := range labels {
		labels[i] = uint8(rng.IntN(Classes))
	}
	return m, opt, x, labels
}

// BenchmarkTrainStepKerasMNIST times one training step of the reference
// model at its batch size, 128, and reports images per second.
func BenchmarkTrainStepKerasMNIST(b *testing.B) {
	m, opt, x, labels := benchModel(b, "keras-mnist", 128)
	m.TrainStep(x, labels, opt) // warm up: allocate buffers and slots
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.TrainStep(x, labels, opt)
	}
	b.ReportMetric(float64(b.N*x.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPredictKerasMNIST times the prediction of one image.
func BenchmarkPredictKerasMNIST(b *testing.B) {
	m, _, x, _ := benchModel(b, "keras-mnist", 1)
	m.Predict(x)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.Predict(x)
	}
}

// BenchmarkGEMM times the matrix products of conv2 in keras-mnist at batch
// 128: the forward product cols(73728, 288)·W(288, 64), the weight gradient
// colsᵀ·dY, and the input gradient dY·Wᵀ.
func BenchmarkGEMM(b *testing.B) {
	const m, k, n = 128 * 24 * 24, 3 * 3 * 32, 64
	rng := rand.New(rand.NewPCG(1, 1))
	fill := func(s int) []float32 {
		v := make([]float32, s)
		for i := range v {
			v[i] = rng.Float32()
		}
		return v
	}
	cols, w, dy := fill(m*k), fill(k*n), fill(m*n)
	out, dw, dcols := make([]float32, m*n), make([]float32, k*n), make([]float32, m*k)
	cases := []struct {
		name string
		run  func()
	}{
		{"conv2-forward", func() { gemm(false, false, m, n, k, 1, cols, k, w, n, 0, out, n) }},
		{"conv2-weight-grad", func() { gemm(true, false, k, n, m, 1, cols, k, dy, n, 0, dw, n) }},
		{"conv2-input-grad", func() { gemm(false, true, m, k, n, 1, dy, n, w, n, 0, dcols, k) }},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s-%dx%dx%d", c.name, m, n, k), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.run()
			}
			b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
