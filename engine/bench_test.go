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

// conv2Bench builds keras-mnist's conv2 (26x26x32 -> 24x24x64, 3x3, ReLU)
// with random weights and a batch of n random inputs.
func conv2Bench(n int) (*Conv2D, *Tensor) {
	rng := rand.New(rand.NewPCG(1, 1))
	l := newConv2D("conv2", Shape{26, 26, 32}, 64, 3, 3, 1, false, true)
	randomize(l.weight, rng)
	randomize(l.bias, rng)
	x := NewTensor(n, l.in)
	randomize(x.Data, rng)
	return l, x
}

// BenchmarkConvKernels times the three implicit-GEMM products of
// keras-mnist's conv2 (conv_gemm.go) on one core, image after image, and
// reports the useful GFLOP/s (2*OH*OW*K*OC per image and product).
func BenchmarkConvKernels(b *testing.B) {
	const n = 32
	l, x := conv2Bench(n)
	g := &l.geom
	y := NewTensor(n, l.out)
	dy := NewTensor(n, l.out)
	randomize(dy.Data, rand.New(rand.NewPCG(2, 2)))
	dx := NewTensor(n, l.in)
	dw, db := make([]float32, len(l.weight)), make([]float32, g.oc)
	wf := make([]float32, len(l.weight))
	convFlipWeights(g, wf, l.weight)
	hy, wy := g.dypShape()
	dyp := make([]float32, hy*wy*g.oc)
	for oy := 0; oy < g.oh; oy++ { // image 0's gradient inside the border
		copy(dyp[((oy+g.kh-1)*wy+g.kw-1)*g.oc:][:g.ow*g.oc], dy.Data[oy*g.ow*g.oc:])
	}
	inner := dyp[((g.kh-1)*wy+g.kw-1)*g.oc:]
	flops := 2 * float64(n*g.oh*g.ow*g.k()*g.oc)
	for _, c := range []struct {
		name string
		run  func(i int)
	}{
		{"conv2-forward", func(i int) {
			convForward(l.kern, g, x.Example(i), l.weight, l.bias, true, y.Example(i), 0, g.oh)
		}},
		{"conv2-weight-grad", func(i int) {
			convWeightGrad(l.kern, g, x.Example(i), inner, wy*g.oc, dw, db, 1, nil)
		}},
		{"conv2-input-grad", func(i int) { convInputGrad(l.kern, g, dyp, wf, dx.Example(i)) }},
	} {
		b.Run(c.name+"/"+l.kern.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i := 0; i < n; i++ {
					c.run(i)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkConvLayer times conv2's Forward and Backward at batch 128 on
// every CPU.
func BenchmarkConvLayer(b *testing.B) {
	l, x := conv2Bench(128)
	dy := NewTensor(128, l.out)
	randomize(dy.Data, rand.New(rand.NewPCG(2, 2)))
	flops := 2 * float64(128*l.out.Size()*l.geom.k())
	b.Run("conv2-forward", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Forward(x, true)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("conv2-backward", func(b *testing.B) {
		l.Forward(x, true)
		b.ReportAllocs()
		for b.Loop() {
			l.Backward(dy)
		}
		b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkMaxPool times keras-mnist's pool1 (24x24x64 -> 12x12x64) at
// batch 128.
func BenchmarkMaxPool(b *testing.B) {
	l := newMaxPool2D("pool1", Shape{24, 24, 64}, 2, 2)
	x := NewTensor(128, l.in)
	randomize(x.Data, rand.New(rand.NewPCG(1, 1)))
	dy := NewTensor(128, l.out)
	b.Run("forward", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x.Data)))
		for b.Loop() {
			l.Forward(x, true)
		}
	})
	b.Run("backward", func(b *testing.B) {
		l.Forward(x, true)
		b.SetBytes(int64(4 * len(x.Data)))
		for b.Loop() {
			l.Backward(dy)
		}
	})
}

// BenchmarkVec times the vector kernels of vec.go and dropout on one core,
// at the sizes of keras-mnist at batch 128 (conv2's output for the ReLU's
// mask, pool1's output for dropout, all 1.2M weights for Adadelta).
func BenchmarkVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		randomize(v, rng)
		return v
	}
	const conv2, pool1, weights = 128 * 24 * 24 * 64, 128 * 12 * 12 * 64, 1199882
	g, y, dst := fill(conv2), fill(conv2), make([]float32, conv2)
	b.Run("relu-mask", func(b *testing.B) {
		b.SetBytes(4 * conv2)
		for b.Loop() {
			reluMaskTo(dst, g, y)
		}
	})
	b.Run("dropout", func(b *testing.B) {
		b.SetBytes(4 * pool1)
		for b.Loop() {
			dropoutMask(dst[:pool1], g[:pool1], 1, 0, 0.25)
		}
	})
	p, grad, a, d := fill(weights), fill(weights), make([]float32, weights), make([]float32, weights)
	b.Run("adadelta", func(b *testing.B) {
		b.SetBytes(4 * weights)
		for b.Loop() {
			adadeltaUpdate(p, grad, a, d, 0.95, 1, 1e-7)
		}
	})
}
