package engine

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseSpec feeds arbitrary JSON to the spec parser: it must never
// panic, every rejection must be an error (a *SpecError once the JSON
// decodes), and every accepted spec must build and run a forward pass.
func FuzzParseSpec(f *testing.F) {
	for _, p := range Presets() {
		data, _ := json.Marshal(p.Spec)
		f.Add(data)
	}
	f.Add([]byte(`{"layers": [{"type": "conv2d", "filters": 3, "kernel": [2, 5], "stride": 3, "padding": "same"}, {"type": "flatten"}, {"type": "dense", "units": 10}]}`))
	f.Add([]byte(`{"layers": [{"type": "maxpool2d", "size": 28}, {"type": "flatten"}, {"type": "dense", "units": 10}]}`))
	f.Add([]byte(`{"layers": [{"type": "conv2d", "filters": 1024, "kernel": 1}]}`))
	f.Add([]byte(`{"layers": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			var se *SpecError
			var syntax *json.SyntaxError
			if !errors.As(err, &se) && !errors.As(err, &syntax) && err.Error() == "" {
				t.Fatalf("empty error for %q", data)
			}
			return
		}
		m, err := Build(spec, 1)
		if err != nil {
			t.Fatalf("ParseSpec accepted what Build rejects: %v", err)
		}
		if m.ParamCount() > 2_000_000 {
			return // valid, but too slow to run on every fuzz input
		}
		out := m.Predict(NewTensor(1, MNISTInput))
		if out.Shape.Size() != Classes {
			t.Fatalf("output shape %v", out.Shape)
		}
	})
}
