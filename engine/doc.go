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
//   - im2col reads a receptive field as KH*KW runs of C contiguous floats,
//   - the GEMM that computes a convolution, cols(N*OH*OW, KH*KW*C) ·
//     W(KH*KW*C, OC), writes its result directly in NHWC, with no transpose,
//   - a conv kernel laid out (KH, KW, C, OC) and Flatten's order are exactly
//     those of Keras, so the reference model maps one to one.
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
