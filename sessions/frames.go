package sessions

import (
	"math"
	"time"

	"cnnviz/engine"
	"cnnviz/engine/mnist"
	"cnnviz/stream"
)

// filtersFrame renders the first layer's filters: one map per filter,
// on one colour scale symmetric around zero (lo = -max|w|, hi = +max|w|),
// so that byte 128 is zero and the browser's legend can say which colour is
// negative and which positive. It returns nil when the first layer is not a
// convolution over the single-channel image.
func filtersFrame(m *engine.Model) *stream.ImageGroup {
	conv, ok := m.Layers[0].(*engine.Conv2D)
	if !ok || conv.InShape().C != 1 {
		return nil
	}
	w := conv.Params()[0] // (KH, KW, 1, OC): for one input channel, exactly HWC with C = OC
	kh, kw := w.Shape[0], w.Shape[1]
	oc := w.Shape[3]
	var a float32
	for _, v := range w.Value {
		a = max(a, float32(math.Abs(float64(v))))
	}
	if a == 0 {
		a = 1
	}
	g := &stream.ImageGroup{Name: "filters", H: kh, W: kw, C: oc, Lo: -a, Hi: a, Pixels: make([]uint8, kh*kw*oc)}
	stream.Quantize(g.Pixels, w.Value, kh, kw, oc, -a, a)
	return g
}

// tapGroups renders every layer's output for one image (taps of a batch of
// one), preceded by the input: conv and pool outputs as stacks of maps,
// dense outputs as a strip of W units. Each group has its own scale, from
// min(0, lowest) to the highest value, so that zero is always black.
func tapGroups(input []float32, taps []engine.Tap) []stream.ImageGroup {
	groups := []stream.ImageGroup{group("input", engine.MNISTInput, input, 0, 1)}
	for i, t := range taps {
		switch t.Type {
		case "dropout", "flatten":
			continue // the same values as the layer before
		}
		lo, hi := float32(0), float32(0)
		for _, v := range t.Data {
			lo, hi = min(lo, v), max(hi, v)
		}
		if i == len(taps)-1 {
			lo, hi = 0, 1 // probabilities
		}
		if hi <= lo {
			hi = lo + 1
		}
		groups = append(groups, group(t.Layer, t.Shape, t.Data, lo, hi))
	}
	return groups
}

func group(name string, s engine.Shape, data []float32, lo, hi float32) stream.ImageGroup {
	h, w, c := s.H, s.W, s.C
	if s.Flat() { // a vector: one map, one row of units
		h, w, c = 1, s.C, 1
	}
	g := stream.ImageGroup{Name: name, H: h, W: w, C: c, Lo: lo, Hi: hi, Pixels: make([]uint8, h*w*c)}
	stream.Quantize(g.Pixels, data, h, w, c, lo, hi)
	return g
}

// probeInput returns test image i scaled to [0, 1].
func probeInput(test *mnist.Set, i int) *engine.Tensor {
	x := engine.NewTensor(1, engine.MNISTInput)
	for j, p := range test.Image(i) {
		x.Data[j] = float32(p) / 255
	}
	return x
}

// frames builds the filters and the probe's activation maps from m. The
// caller owns m for the duration (the runner, or a predictor).
func (s *Session) frames(m *engine.Model, step int64) (filters, acts *stream.ImageFrame) {
	rec := s.Record()
	probe := min(max(rec.Probe, 0), s.m.opts.Test.Len()-1)
	x := probeInput(s.m.opts.Test, probe)
	taps := m.Taps(x)
	if g := filtersFrame(m); g != nil {
		filters = &stream.ImageFrame{Kind: stream.KindFilters, Step: uint64(step), Session: s.id, Groups: []stream.ImageGroup{*g}}
	}
	acts = &stream.ImageFrame{Kind: stream.KindActivations, Step: uint64(step), Session: s.id, Groups: tapGroups(x.Data, taps)}
	return filters, acts
}

// publishImages refreshes the weights that predictions use and sends the
// filters and the probe's activation maps to viewers (latest-wins).
//
// The periodic publish while training skips the frames when nobody is
// watching; commands (pause, step, refresh) publish them always, since the
// topic keeps the latest for the next viewer. The activation maps, 69 KB a
// frame for keras-mnist against 0.3 KB of filters, go out at every other
// interval: a fixed probe image's maps change slowly, and halving them
// halves what 50 viewers cost the training.
func (r *runner) publishImages(now time.Time, always bool) {
	r.lastImages = now
	step := r.trainer.StepCount()
	r.s.weights.Store(snapshotWeights(r.model, step))
	if !always && r.s.topic.Clients() == 0 {
		// Nobody is watching: skip the forward pass and the encoding. A
		// viewer who connects gets frames at the next interval.
		r.s.framesPublished.Store(false)
		return
	}
	if !always && now.Sub(r.lastActivations) < 2*r.s.m.opts.PublishInterval {
		if g := filtersFrame(r.model); g != nil {
			r.s.publishFrame("filters", &stream.ImageFrame{Kind: stream.KindFilters, Step: uint64(step), Session: r.s.id, Groups: []stream.ImageGroup{*g}})
		}
		return
	}
	r.lastActivations = now
	filters, acts := r.s.frames(r.model, step)
	r.s.publishFrame("filters", filters)
	r.s.publishFrame("activations", acts)
}

func (s *Session) publishFrame(key string, f *stream.ImageFrame) {
	if f == nil {
		return
	}
	f.Seq = s.nextSeq()
	data, err := f.MarshalBinary()
	if err != nil {
		s.m.log.Error("encoding frame", "session", s.id, "err", err)
		return
	}
	msg, err := stream.NewBinary(f.Seq, data)
	if err != nil {
		return
	}
	s.topic.PublishLatest(key, msg)
	s.framesPublished.Store(true)
}

// storeSnapshot keeps the filters and the probe's maps at this step, for
// scrubbing back through training. Both go in one frame (filters group
// first when there is one).
func (r *runner) storeSnapshot(step int64) {
	filters, acts := r.s.frames(r.model, step)
	frame := acts
	if filters != nil {
		frame.Groups = append([]stream.ImageGroup{filters.Groups[0]}, acts.Groups...)
	}
	frame.Kind = stream.KindSnapshot
	data, err := frame.MarshalBinary()
	if err != nil {
		return
	}
	r.s.m.persist.put(write{id: r.s.id, step: step, snapshot: data})
}
