package engine

import "math"

// SoftmaxCrossEntropy is the softmax of logits(N, classes) fused with the
// categorical cross-entropy against integer labels. It returns the mean loss
// over the batch and the number of examples whose largest logit is the label,
// and writes into dlogits (same size as logits) the gradient of the mean
// loss: (softmax - onehot) / N.
//
// Fusing the two is both cheaper and numerically safer than a softmax layer
// followed by a log: subtracting the row maximum keeps exp in range, and the
// gradient needs no division by a probability that may be zero.
func SoftmaxCrossEntropy(logits *Tensor, labels []uint8, dlogits []float32) (loss float32, correct int) {
	n, classes := logits.N, logits.Shape.Size()
	if len(labels) != n || len(dlogits) != len(logits.Data) {
		panic("engine: SoftmaxCrossEntropy size mismatch")
	}
	var total float64
	inv := 1 / float32(n)
	for i := 0; i < n; i++ {
		z := logits.Data[i*classes : (i+1)*classes]
		d := dlogits[i*classes : (i+1)*classes]
		best := argmax(z)
		maxZ := z[best]
		var sum float64
		for j, v := range z {
			e := math.Exp(float64(v - maxZ))
			d[j] = float32(e)
			sum += e
		}
		y := int(labels[i])
		// -log softmax(z)_y = log Σ exp(z - max) - (z_y - max)
		total += math.Log(sum) - float64(z[y]-maxZ)
		for j := range d {
			d[j] = d[j] / float32(sum) * inv
		}
		d[y] -= inv
		if best == y {
			correct++
		}
	}
	return float32(total / float64(n)), correct
}

// Softmax writes the softmax of each row of logits(N, classes) into probs.
func Softmax(probs []float32, logits *Tensor) {
	classes := logits.Shape.Size()
	for i := 0; i < logits.N; i++ {
		z := logits.Data[i*classes : (i+1)*classes]
		p := probs[i*classes : (i+1)*classes]
		maxZ := z[argmax(z)]
		var sum float64
		for j, v := range z {
			e := math.Exp(float64(v - maxZ))
			p[j] = float32(e)
			sum += e
		}
		for j := range p {
			p[j] = float32(float64(p[j]) / sum)
		}
	}
}

// argmax returns the index of the largest value, the first one on ties.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
