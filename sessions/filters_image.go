package sessions

import (
	"errors"
	"image"
	"image/color"
	"math"

	"cnnviz/engine"
)

// Diverging is the colour scale filters are drawn with, here and in the
// browser: blue for negative weights, white for zero, red for positive.
func Diverging(t float64) color.RGBA {
	// t in [-1, 1]
	t = math.Max(-1, math.Min(1, t))
	neg := color.RGBA{R: 37, G: 99, B: 235, A: 255} // #2563eb
	pos := color.RGBA{R: 220, G: 38, B: 38, A: 255} // #dc2626
	end := pos
	if t < 0 {
		end, t = neg, -t
	}
	mix := func(a uint8) uint8 { return uint8(255 + (float64(a)-255)*t + 0.5) }
	return color.RGBA{R: mix(end.R), G: mix(end.G), B: mix(end.B), A: 255}
}

// FiltersImage draws the first layer's filters as a grid, each scaled up
// `scale` times with crisp pixels, on one colour scale symmetric around
// zero.
func (s *Session) FiltersImage(scale int) (image.Image, error) {
	model, release, err := s.predictor()
	if err != nil {
		return nil, err
	}
	defer release()
	conv, ok := model.Layers[0].(*engine.Conv2D)
	if !ok || conv.InShape().C != 1 {
		return nil, errors.New("the first layer is not a convolution of the image: no filters to draw")
	}
	w := conv.Params()[0]
	kh, kw, oc := w.Shape[0], w.Shape[1], w.Shape[3]
	var a float64
	for _, v := range w.Value {
		a = math.Max(a, math.Abs(float64(v)))
	}
	if a == 0 {
		a = 1
	}
	const gap = 2
	cols := min(oc, 8)
	rows := (oc + cols - 1) / cols
	cw, ch := kw*scale+gap, kh*scale+gap
	img := image.NewRGBA(image.Rect(0, 0, cols*cw+gap, rows*ch+gap))
	for i := range img.Pix {
		img.Pix[i] = 0xf1 // a light grey background between filters
	}
	for f := 0; f < oc; f++ {
		ox, oy := gap+(f%cols)*cw, gap+(f/cols)*ch
		for y := 0; y < kh*scale; y++ {
			for x := 0; x < kw*scale; x++ {
				v := w.Value[((y/scale)*kw+x/scale)*oc+f]
				img.SetRGBA(ox+x, oy+y, Diverging(float64(v)/a))
			}
		}
	}
	return img, nil
}
