package engine

import (
	"math"
	"math/rand/v2"
)

// glorotUniform fills w with values drawn uniformly from [-limit, limit],
// limit = sqrt(6 / (fanIn + fanOut)), as Keras's default kernel initialiser
// does (Glorot & Bengio 2010). For a conv kernel (KH, KW, C, OC) Keras takes
// fanIn = KH*KW*C and fanOut = KH*KW*OC.
func glorotUniform(w []float32, fanIn, fanOut int, rng *rand.Rand) {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range w {
		w[i] = float32((rng.Float64()*2 - 1) * limit)
	}
}
