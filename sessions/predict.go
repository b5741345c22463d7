package sessions

import (
	"fmt"
	"time"

	"cnnviz/engine"
	"cnnviz/stream"
)

// Prediction is a session model's answer for one drawing.
type Prediction struct {
	Digit         int                     `json:"digit"`
	Probabilities [engine.Classes]float32 `json:"probabilities"`
	Step          int64                   `json:"step"`   // the training step of the weights used
	Empty         bool                    `json:"empty"`  // nothing was drawn
	BBox          [4]int                  `json:"bbox"`   // x0, y0, x1, y1 of the ink in the drawing
	Scaled        Image                   `json:"scaled"` // the digit fitted in 20x20
	Input         Image                   `json:"input"`  // the centred 28x28 image the network saw
	Micros        int64                   `json:"micros"` // time spent preprocessing and classifying
	// Activations holds every layer's output for the drawing, as a binary
	// image frame (kind 3); it is sent as its own WebSocket frame and left
	// out of the JSON.
	Activations *stream.ImageFrame `json:"-"`
}

// Image is a small greyscale image for the preprocessing view, 0..255.
type Image struct {
	W      int     `json:"w"`
	H      int     `json:"h"`
	Pixels []uint8 `json:"pixels"`
}

// Predict normalises a drawing the MNIST way and classifies it with the
// session's latest published weights. It is safe to call from any
// goroutine at any time, also while the session trains: it runs on a model
// of its own, with a consistent copy of the weights.
func (s *Session) Predict(d engine.Drawing) (*Prediction, error) {
	start := time.Now()
	pre, err := engine.Preprocess(d)
	if err != nil {
		return nil, err
	}
	return s.classify(pre, start)
}

func (s *Session) classify(pre *engine.Preprocessed, start time.Time) (*Prediction, error) {
	model, release, err := s.predictor()
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", s.id, err)
	}
	defer release()
	x := &engine.Tensor{N: 1, Shape: engine.MNISTInput, Data: pre.Image[:]}
	taps := model.Taps(x)
	probs := taps[len(taps)-1].Data
	p := &Prediction{
		Empty: pre.Empty,
		BBox:  [4]int{pre.BBox.Min.X, pre.BBox.Min.Y, pre.BBox.Max.X, pre.BBox.Max.Y},
		Input: Image{W: 28, H: 28, Pixels: pre.Bytes()},
		Activations: &stream.ImageFrame{
			Kind: stream.KindPrediction, Session: s.id, Groups: tapGroups(x.Data, taps),
		},
	}
	p.Scaled = Image{W: pre.ScaledW, H: pre.ScaledH, Pixels: make([]uint8, len(pre.Scaled))}
	for i, v := range pre.Scaled {
		p.Scaled.Pixels[i] = uint8(min(max(v, 0), 1)*255 + 0.5)
	}
	copy(p.Probabilities[:], probs)
	for i, v := range probs {
		if v > probs[p.Digit] {
			p.Digit = i
		}
	}
	if ws := s.weights.Load(); ws != nil {
		p.Step = ws.version
	}
	p.Activations.Step = uint64(max(p.Step, 0))
	p.Micros = time.Since(start).Microseconds()
	return p, nil
}
