package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows only the server's own scripts, styles,
// images and sockets: no inline scripts or styles, no framing (a projector
// page cannot be embedded and clickjacked), no plugins.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// The teacher link carries the owner token in its query; it must
		// not leak to other sites through the Referer header.
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

// rejectCrossSite refuses state-changing requests (anything but GET, HEAD
// and OPTIONS) that a browser sent from another site. Browsers mark such
// requests with Origin and Sec-Fetch-Site; clients that are not browsers
// (curl, scripts) send neither and are let through, since they cannot ride
// on a victim's cookies. The owner cookie is SameSite=Strict as well: this
// is the second lock on the door.
func rejectCrossSite(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return errorf(http.StatusForbidden, "cross-site request refused")
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				return errorf(http.StatusForbidden, "cross-site request refused: origin "+origin+" is not this server")
			}
		}
		return next(c)
	}
}
