package web

import (
	"fmt"
	"image"
	"image/color"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"cnnviz/sessions"
)

// rasterQR paints the SVG qrSVG writes, 4 pixels a module, by reading its
// path back: what a phone's camera would see.
func rasterQR(t *testing.T, svg string) image.Image {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(svg[strings.Index(svg, "viewBox"):], `viewBox="0 0 %d`, &n); err != nil || n < 21 {
		t.Fatalf("no viewBox in %.80s", svg)
	}
	const px = 4
	img := image.NewGray(image.Rect(0, 0, n*px, n*px))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	runs := regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`).FindAllStringSubmatch(svg, -1)
	if len(runs) == 0 {
		t.Fatal("no dark modules")
	}
	for _, r := range runs {
		x, _ := strconv.Atoi(r[1])
		y, _ := strconv.Atoi(r[2])
		w, _ := strconv.Atoi(r[3])
		for yy := y * px; yy < (y+1)*px; yy++ {
			for xx := x * px; xx < (x+w)*px; xx++ {
				img.SetGray(xx, yy, color.Gray{})
			}
		}
	}
	return img
}

func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the QR code does not decode: %v", err)
	}
	return res.GetText()
}

func TestQRSVGDecodes(t *testing.T) {
	for _, text := range []string{
		"http://127.0.0.1:8080/sessions/0123456789ab",
		"http://192.168.100.200:8080/sessions/ffffffffffff",
		"https://cnnviz.school.example/sessions/a1b2c3d4e5f6",
	} {
		svg, err := qrSVG(text)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, rasterQR(t, string(svg))); got != text {
			t.Errorf("decoded %q, want %q", got, text)
		}
	}
}

func TestJoinQR(t *testing.T) {
	s, mgr := newPagesServer(t)
	sess, _, err := mgr.Create(sessions.Settings{Preset: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(t, s, "/sessions/"+sess.ID()+"/join.svg")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("GET join.svg = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got, want := decodeQR(t, rasterQR(t, rec.Body.String())), "http://example.com/sessions/"+sess.ID(); got != want {
		t.Errorf("the join QR code says %q, want %q", got, want)
	}
	if rec := get(t, s, "/sessions/nosuchsession/join.svg"); rec.Code != http.StatusNotFound {
		t.Errorf("GET an unknown session's QR code = %d, want 404", rec.Code)
	}
}
