package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"cnnviz/sessions"
)

// plot serves the exports: loss.svg, loss.png, accuracy.svg, accuracy.png,
// filters.png and metrics.csv.
func (s *Server) plot(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	file := c.Param("file")
	switch file {
	case "metrics.csv":
		points, epochs, err := sess.Metrics()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := writeMetricsCSV(&buf, points, epochs); err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", "cnnviz-"+sess.ID()+"-metrics.csv"))
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	case "filters.png":
		img, err := sess.FiltersImage(12)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "image/png", buf.Bytes())
	}
	name, format, ok := strings.Cut(file, ".")
	if !ok || (name != "loss" && name != "accuracy") || (format != "svg" && format != "png") {
		return errorf(http.StatusNotFound, "no such export: want loss.svg, loss.png, accuracy.svg, accuracy.png, filters.png or metrics.csv")
	}
	points, epochs, err := sess.Metrics()
	if err != nil {
		return err
	}
	p, err := curvePlot(name, sess.Record(), points, epochs)
	if err != nil {
		return err
	}
	wt, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	mime := "image/png"
	if format == "svg" {
		mime = "image/svg+xml"
	}
	return c.Blob(http.StatusOK, mime, buf.Bytes())
}

// curvePlot draws the training curve of one metric per batch (raw, faint,
// and smoothed) with the test metric per epoch, against epochs.
func curvePlot(metric string, rec sessions.Record, points []sessions.MetricPoint, epochs []sessions.EpochResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s", rec.Config.Name, metric)
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = metric
	if metric == "accuracy" {
		p.Y.Label.Text = "accuracy (%)"
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = metric == "loss"
	bpe := float64(max(rec.BatchesPerEpoch, 1))
	value := func(pt sessions.MetricPoint) float64 {
		if metric == "loss" {
			return float64(pt.Loss)
		}
		return 100 * float64(pt.Acc)
	}
	raw := make(plotter.XYs, len(points))
	smooth := make(plotter.XYs, len(points))
	var ema float64
	for i, pt := range points {
		v := value(pt)
		if i == 0 {
			ema = v
		}
		// An exponential moving average over ~1/0.05 = 20 batches, like
		// the browser's chart.
		ema += 0.05 * (v - ema)
		raw[i] = plotter.XY{X: float64(pt.Step) / bpe, Y: v}
		smooth[i] = plotter.XY{X: float64(pt.Step) / bpe, Y: ema}
	}
	if len(points) > 0 {
		l, err := plotter.NewLine(raw)
		if err != nil {
			return nil, err
		}
		l.Color = color.RGBA{R: 37, G: 99, B: 235, A: 60}
		s, err := plotter.NewLine(smooth)
		if err != nil {
			return nil, err
		}
		s.Color = color.RGBA{R: 37, G: 99, B: 235, A: 255}
		s.Width = vg.Points(1.5)
		p.Add(l, s)
		p.Legend.Add("train (per batch, smoothed)", s)
	}
	if len(epochs) > 0 {
		test := make(plotter.XYs, len(epochs))
		for i, e := range epochs {
			v := e.TestLoss
			if metric == "accuracy" {
				v = 100 * e.TestAcc
			}
			test[i] = plotter.XY{X: float64(e.Step) / bpe, Y: v}
		}
		line, points, err := plotter.NewLinePoints(test)
		if err != nil {
			return nil, err
		}
		red := color.RGBA{R: 220, G: 38, B: 38, A: 255}
		line.Color, points.Color = red, red
		points.Radius = vg.Points(3)
		p.Add(line, points)
		p.Legend.Add("test (per epoch)", line, points)
	}
	p.X.Min = 0
	if metric == "loss" {
		p.Y.Min = 0
	}
	return p, nil
}

func writeMetricsCSV(w *bytes.Buffer, points []sessions.MetricPoint, epochs []sessions.EpochResult) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"})
	e := 0
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, pt := range points {
		row := []string{strconv.FormatInt(pt.Step, 10), strconv.Itoa(pt.Epoch), f(float64(pt.Loss)), f(float64(pt.Acc)), "", ""}
		if e < len(epochs) && epochs[e].Step == pt.Step {
			row[4], row[5] = f(epochs[e].TestLoss), f(epochs[e].TestAcc)
			e++
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// testImage serves test image i as a PNG, scaled up 4x, for the mistakes
// gallery and the probe picker.
func (s *Server) testImage(c echo.Context) error {
	i, err := strconv.Atoi(strings.TrimSuffix(c.Param("index"), ".png"))
	_, test := s.sessions.Data()
	if err != nil || i < 0 || i >= test.Len() {
		return errorf(http.StatusNotFound, fmt.Sprintf("no test image %q (want 0..%d)", c.Param("index"), test.Len()-1))
	}
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, test.Cols*scale, test.Rows*scale))
	px := test.Image(i)
	for y := 0; y < test.Rows*scale; y++ {
		for x := 0; x < test.Cols*scale; x++ {
			img.Pix[y*img.Stride+x] = 255 - px[(y/scale)*test.Cols+x/scale]
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "max-age=86400")
	c.Response().Header().Set("X-Label", strconv.Itoa(int(test.Labels[i])))
	return c.Blob(http.StatusOK, "image/png", buf.Bytes())
}
