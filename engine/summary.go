package engine

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// LayerSummary is one row of a model's cost table, the kind the article
// prints for VGG-16: what each layer outputs, how much memory that takes per
// image, and how many weights it learns.
type LayerSummary struct {
	Name        string `json:"name"`        // "conv1"
	Type        string `json:"type"`        // "conv2d"
	Description string `json:"description"` // "CONV3-32", "POOL2", "FC-128"
	Output      Shape  `json:"-"`
	OutputText  string `json:"output"`      // "26x26x32"
	Activations int    `json:"activations"` // values in the output of one image
	Bytes       int    `json:"bytes"`       // Activations * 4 (float32)
	Weights     int    `json:"weights"`     // learnable values, biases included
	WeightsText string `json:"weightsText"` // "(3*3*1)*32 + 32 = 320"
}

// Summary is a model's cost table with its totals.
type Summary struct {
	Input            Shape          `json:"-"`
	Layers           []LayerSummary `json:"layers"`
	TotalActivations int            `json:"totalActivations"` // input included, as in the article
	TotalBytes       int            `json:"totalBytes"`       // forward pass, per image
	TotalWeights     int            `json:"totalWeights"`
}

// Summarize computes the cost table of m.
func Summarize(m *Model) Summary {
	s := Summary{Input: MNISTInput, TotalActivations: MNISTInput.Size()}
	for i, l := range m.Layers {
		ls := m.Spec.Layers[i]
		out := l.OutShape()
		row := LayerSummary{
			Name: l.Name(), Type: ls.Type, Output: out, OutputText: out.String(),
			Activations: out.Size(), Bytes: 4 * out.Size(),
		}
		switch l := l.(type) {
		case *Conv2D:
			row.Description = fmt.Sprintf("CONV%s-%d", kernelText(l.kh, l.kw), out.C)
			row.Weights = l.kh*l.kw*l.in.C*out.C + out.C
			row.WeightsText = fmt.Sprintf("(%d*%d*%d)*%d + %d = %s", l.kh, l.kw, l.in.C, out.C, out.C, FormatCount(row.Weights))
		case *MaxPool2D:
			row.Description = fmt.Sprintf("POOL%d", l.size)
		case *Dense:
			row.Description = fmt.Sprintf("FC-%d", out.C)
			row.Weights = l.in.Size()*out.C + out.C
			row.WeightsText = fmt.Sprintf("%d*%d + %d = %s", l.in.Size(), out.C, out.C, FormatCount(row.Weights))
		case *Dropout:
			row.Description = fmt.Sprintf("DROPOUT %g", l.rate)
		default:
			row.Description = strings.ToUpper(ls.Type)
		}
		if ls.Activation != "" {
			row.Description += " " + ls.Activation
		}
		if row.WeightsText == "" {
			row.WeightsText = "0"
		}
		s.Layers = append(s.Layers, row)
		s.TotalActivations += row.Activations
		s.TotalWeights += row.Weights
	}
	s.TotalBytes = 4 * s.TotalActivations
	return s
}

func kernelText(kh, kw int) string {
	if kh == kw {
		return fmt.Sprint(kh)
	}
	return fmt.Sprintf("%dx%d", kh, kw)
}

// WriteText prints the table as plain text, one layer per line.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\t\toutput\tactivations\tmemory\tweights\t")
	fmt.Fprintf(tw, "input\t\t%s\t%s\t%s\t0\t\n", s.Input, FormatCount(s.Input.Size()), FormatBytes(4*s.Input.Size()))
	for _, l := range s.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, l.Description, l.OutputText, FormatCount(l.Activations), FormatBytes(l.Bytes), l.WeightsText)
	}
	fmt.Fprintf(tw, "total\t\t\t%s\t%s\t%s\t\n", FormatCount(s.TotalActivations), FormatBytes(s.TotalBytes), FormatCount(s.TotalWeights))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nForward pass: %s per image (about twice that with the backward pass); weights: %s as float32.\n",
		FormatBytes(s.TotalBytes), FormatBytes(4*s.TotalWeights))
	return err
}

// FormatCount formats 1234567 as "1,234,567", as the summary tables do.
func FormatCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// FormatBytes formats a byte count in B, KB or MB (of 1024), as the
// summary tables do.
func FormatBytes(b int) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// TrainingBytes estimates the memory one training step of m takes at a
// batch size: every layer's output and its gradient, and per weight its
// value, gradient and two optimiser slots. It is an estimate for refusing
// models that cannot fit, not an exact count.
func TrainingBytes(m *Model, batch int) int64 {
	var floats int64
	for _, l := range m.Layers {
		floats += 2 * int64(batch) * int64(l.OutShape().Size())
	}
	floats += 4 * int64(m.ParamCount())
	return 4 * floats
}
