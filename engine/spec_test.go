package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSpecErrors(t *testing.T) {
	cases := []struct {
		name, json, want string
	}{
		{"empty", `{"layers": []}`, "spec: no layers"},
		{"unknown type", `{"layers": [{"type": "lstm"}]}`, "layer 1 (lstm): unknown layer type"},
		{"unknown field", `{"layers": [{"type": "dense", "unit": 10}]}`, `unknown field "unit"`},
		{"kernel larger than input", `{"layers": [
			{"type": "conv2d", "filters": 4, "kernel": 5},
			{"type": "maxpool2d", "size": 8},
			{"type": "conv2d", "filters": 4, "kernel": 5},
			{"type": "flatten"}, {"type": "dense", "units": 10}]}`,
			"layer 3 (conv2d): kernel 5x5 is larger than its 3x3 input"},
		{"negative filters", `{"layers": [{"type": "conv2d", "filters": -3, "kernel": 3}]}`, "layer 1 (conv2d): filters -3"},
		{"zero kernel", `{"layers": [{"type": "conv2d", "filters": 3, "kernel": 0}]}`, "layer 1 (conv2d): kernel 0x0"},
		{"bad kernel", `{"layers": [{"type": "conv2d", "filters": 3, "kernel": [1,2,3]}]}`, "kernel must be a number or [height, width]"},
		{"bad padding", `{"layers": [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "full"}]}`, `padding "full"`},
		{"negative stride", `{"layers": [{"type": "maxpool2d", "stride": -1}]}`, "layer 1 (maxpool2d): stride -1"},
		{"pool too big", `{"layers": [{"type": "maxpool2d", "size": 29}]}`, "size 29"},
		{"dense on image", `{"layers": [{"type": "dense", "units": 10}]}`, "add a flatten layer"},
		{"conv after flatten", `{"layers": [{"type": "flatten"}, {"type": "conv2d", "filters": 2, "kernel": 1}]}`, "layer 2 (conv2d): needs an image"},
		{"dropout rate", `{"layers": [{"type": "dropout", "rate": 1}]}`, "rate 1 must be in [0, 1)"},
		{"field of another type", `{"layers": [{"type": "maxpool2d", "units": 3}]}`, `field "units" does not apply`},
		{"softmax in the middle", `{"layers": [{"type": "flatten"}, {"type": "dense", "units": 5, "activation": "softmax"}, {"type": "dense", "units": 10}]}`, "softmax is only allowed on the last"},
		{"unknown activation", `{"layers": [{"type": "flatten"}, {"type": "dense", "units": 10, "activation": "tanh"}]}`, `unknown activation "tanh"`},
		{"wrong output", `{"layers": [{"type": "flatten"}, {"type": "dense", "units": 9}]}`, "last layer must be dense with 10 units"},
		{"too many weights", `{"layers": [{"type": "flatten"}, {"type": "dense", "units": 16384}, {"type": "dense", "units": 16384}, {"type": "dense", "units": 10}]}`, "over"},
		{"not json", `{"layers": [`, "spec:"},
		{"trailing", `{"layers": [{"type": "flatten"}, {"type": "dense", "units": 10}]} {}`, "trailing data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	var se *SpecError
	if _, err := ParseSpec([]byte(`{"layers": [{"type": "lstm"}]}`)); !errors.As(err, &se) || se.Index != 0 {
		t.Errorf("error %v is not a *SpecError for layer 0", err)
	}
}

func TestPresetsBuild(t *testing.T) {
	want := map[string]int{"keras-mnist": 1199882, "lenet5": 61706, "tiny": 5258}
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			m, err := Build(p.Spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.ParamCount(); got != want[p.Name] {
				t.Errorf("%d weights, want %d", got, want[p.Name])
			}
			if _, err := NewOptimizer(p.Optimizer); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := LookupPreset("vgg16"); err == nil || !strings.Contains(err.Error(), "keras-mnist") {
		t.Errorf("unknown preset error %v should list the presets", err)
	}
}

func TestSpecJSONRoundTrip(t *testing.T) {
	p, _ := LookupPreset("keras-mnist")
	var buf bytes.Buffer
	if err := writeSpecJSON(&buf, p.Spec); err != nil {
		t.Fatal(err)
	}
	back, err := ParseSpec(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	a, _ := Build(p.Spec, 9)
	b, _ := Build(back, 9)
	for i, pa := range a.Params() {
		if !equal32(pa.Value, b.Params()[i].Value) {
			t.Fatalf("%s differs after a JSON round trip", pa.Name)
		}
	}
}

func TestBuildIsSeeded(t *testing.T) {
	p, _ := LookupPreset("tiny")
	a, _ := Build(p.Spec, 42)
	b, _ := Build(p.Spec, 42)
	c, _ := Build(p.Spec, 43)
	if !equal32(a.Params()[0].Value, b.Params()[0].Value) {
		t.Error("same seed, different weights")
	}
	if equal32(a.Params()[0].Value, c.Params()[0].Value) {
		t.Error("different seeds, same weights")
	}
}

// TestSummaryGolden compares the text table of each preset with a golden
// file; run with -update to rewrite them after an intended change.
func TestSummaryGolden(t *testing.T) {
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			m, _ := Build(p.Spec, 1)
			var buf bytes.Buffer
			if err := Summarize(m).WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "summary-"+p.Name+".txt"), buf.Bytes())
		})
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", path, got, want)
	}
}
