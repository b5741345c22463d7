// Package engine is a small, readable convolutional-network library for
// MNIST-sized images: float32 tensors, Conv2D, MaxPool2D, Dense, ReLU,
// Dropout and Flatten layers, a fused softmax cross-entropy loss, the SGD,
// Adam and Adadelta optimisers, JSON model specs with presets, per-layer
// summaries, checkpoints and a step-wise trainer.
//
// # Layout
//
// Images are stored NHWC (batch, height, width, channels), the layout Keras
// calls channels_last. We chose it over NCHW because
//
//   - a receptive field is KH runs of KW*C contiguous floats, so the GEMM
//     that computes a convolution, cols(N*OH*OW, KH*KW*C) · W(KH*KW*C, OC),
//     can read the rows of its im2col matrix cols in place, from the image
//     (conv_gemm.go), and writes its result directly in NHWC,
//   - a conv kernel laid out (KH, KW, C, OC) and Flatten's order are exactly
//     those of Keras, so the reference model maps one to one.
//
// # Speed
//
// Every matrix product goes through one SGEMM (gemm.go) with AVX-512 and
// AVX2 microkernels in assembly and a pure-Go fallback (also under the
// purego build tag); the elementwise passes have AVX-512 kernels too
// (vec.go). Work is spread over the CPUs by a pool of helper goroutines
// (parallel.go), in parts fixed by the shapes, so a seed reproduces a run
// bit for bit on a machine. A training batch goes through the convolution
// and pooling layers image by image (Model.Forward), so that an image's
// maps stay in cache from one layer to the next. A training step allocates
// nothing once warm.
//
// Shape letters used in comments across the package:
//
//	N  batch size            H, W  input height and width     C  input channels
//	OH, OW output height, width   OC output channels (filters)
//	KH, KW kernel height, width   M = N*OH*OW rows of an im2col matrix
//	K = KH*KW*C columns of an im2col matrix
//
// # Ownership
//
// A layer owns the tensors it returns: Forward's output and Backward's input
// gradient are reused by the next call. A Model is not safe for concurrent
// use; Clone one per goroutine (prediction beside training, for example).
//
// Programmer errors (shape mismatches between layers built by this package)
// panic with an "engine: " prefix; bad data and bad specs return errors.
package engine
