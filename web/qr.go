package web

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"
)

// joinQR answers GET /sessions/:id/join.svg: the session page's address as
// a QR code, which the present view shows so that students can open the
// session on their phones without typing it.
func (s *Server) joinQR(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	svg, err := qrSVG(s.baseURL(c) + "/sessions/" + sess.ID())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache") // the address follows the request's host
	return c.Blob(http.StatusOK, "image/svg+xml", svg)
}

// qrSVG draws text as a QR code in SVG, one unit per module and the quiet
// zone included: one path, crisp at any size, so a projector can show it
// large enough to scan from the back of a room. Medium error correction
// survives a projector's glare and keystone.
func qrSVG(text string) ([]byte, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	bits := q.Bitmap()
	n := len(bits)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#0f172a" d="`, n, n)
	for y, row := range bits {
		// Each run of dark modules in a row is one rectangle.
		for x := 0; x < n; {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < n && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes(), nil
}
