// Package web is cnnviz's HTTP server: the JSON API, the WebSocket stream
// of each session, the pages, exports and static files.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"cnnviz/sessions"
	"cnnviz/stream"
	"cnnviz/web/templates"
)

// Options configures the server.
type Options struct {
	Sessions *sessions.Manager
	Hub      *stream.Hub
	Log      *slog.Logger
	// MaxBody bounds request bodies; a 280x280 drawing as JSON is ~110 KB.
	MaxBody string // default "512K"
	// PredictRate is how many predictions a second one client may ask
	// for (per WebSocket; per address over HTTP); default 20, with a burst
	// of as many.
	PredictRate int
	// ShareURL is where other machines reach the server, such as
	// "http://192.168.1.20:8080", for the join and teacher links the pages
	// show; empty means the address each request came to.
	ShareURL string
}

// Server serves cnnviz over HTTP.
type Server struct {
	sessions *sessions.Manager
	hub      *stream.Hub
	log      *slog.Logger
	echo     *echo.Echo
	upgrader websocket.Upgrader
	// predictLimit bounds HTTP predictions per client address.
	predictLimit *clientLimiter
	predictRate  int
	assets       *assets // the embedded JS, CSS and icon
	shareURL     string  // Options.ShareURL, without a trailing slash
}

// New builds the server and its routes.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxBody == "" {
		opts.MaxBody = "512K"
	}
	if opts.PredictRate <= 0 {
		opts.PredictRate = defaultPredictRate
	}
	s := &Server{sessions: opts.Sessions, hub: opts.Hub, log: opts.Log, echo: echo.New(), predictLimit: newClientLimiter(opts.PredictRate), predictRate: opts.PredictRate,
		shareURL: strings.TrimSuffix(opts.ShareURL, "/")}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 16384,
		CheckOrigin:     sameOrigin,
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// "/sessions/abc/" is "/sessions/abc": one address per page.
	e.Pre(middleware.RemoveTrailingSlashWithConfig(middleware.TrailingSlashConfig{RedirectCode: http.StatusMovedPermanently}))
	e.Use(middleware.Recover())
	e.Use(securityHeaders, rejectCrossSite)
	e.Use(middleware.BodyLimit(opts.MaxBody))
	s.routes()
	return s
}

// wantsPage reports whether a request is a browser asking for a page: a
// GET for HTML outside the API, the stream and the static files.
func wantsPage(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") &&
		!strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/ws/") && !strings.HasPrefix(p, "/static/")
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// routes lists every route in one place.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)

	// Pages and the static files they load.
	s.assets = newAssets()
	e.GET("/", s.homePage)
	e.GET("/sessions/:id", s.sessionHTML(s.sessionPage))
	e.GET("/sessions/:id/present", s.sessionHTML(s.presentPage))
	e.GET("/sessions/:id/join.svg", s.joinQR)
	e.GET("/static/:version/*", s.assets.serve)

	api := e.Group("/api")
	api.GET("/presets", s.listPresets)
	api.GET("/sessions", s.listSessions)
	api.POST("/sessions", s.createSession)
	api.GET("/sessions/:id", s.getSession)
	api.DELETE("/sessions/:id", s.deleteSession, s.ownerOnly)
	for _, a := range []sessions.Action{sessions.ActionStart, sessions.ActionPause, sessions.ActionResume, sessions.ActionStep, sessions.ActionStop} {
		api.POST("/sessions/:id/"+string(a), s.control(a), s.ownerOnly)
	}
	api.POST("/sessions/:id/probe", s.setProbe, s.ownerOnly)
	api.POST("/sessions/:id/predict", s.predict)
	api.GET("/sessions/:id/history", s.history)
	api.GET("/sessions/:id/snapshots", s.snapshotSteps)
	api.GET("/sessions/:id/snapshots/:step", s.snapshot)
	api.GET("/sessions/:id/checkpoint", s.checkpoint)
	api.GET("/sessions/:id/plots/:file", s.plot)
	api.GET("/mnist/test/:index", s.testImage)

	e.GET("/ws/sessions/:id", s.watch)
}

// apiError is an error with the status code to answer it with.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, msg string) error { return &apiError{code: code, msg: msg} }

// handleError renders every error a handler returns: JSON {"error": "..."}
// with a fitting status for the API, plain text elsewhere.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg, field := http.StatusInternalServerError, "internal error", ""
	var ae *apiError
	var he *echo.HTTPError
	var fe *sessions.FieldError
	switch {
	case errors.As(err, &ae):
		code, msg = ae.code, ae.msg
	case errors.As(err, &fe):
		code, msg, field = http.StatusBadRequest, fe.Error(), fe.Field
	case errors.Is(err, sessions.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, sessions.ErrConflict):
		code, msg = http.StatusConflict, err.Error()
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
		if code == http.StatusRequestEntityTooLarge {
			msg = "request body too large"
		}
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if code < 500 && msg != "" {
		msg = strings.TrimSpace(msg)
	}
	var werr error
	if code == http.StatusNotFound && wantsPage(c.Request()) {
		// A mistyped address in a browser gets a page with a way back,
		// not JSON.
		werr = Render(c, code, templates.NotFoundPage(templates.NotFound{
			Page: s.page("Not found"), What: fmt.Sprintf("page %q", c.Request().URL.Path),
		}))
	} else if c.Request().Method == http.MethodHead {
		werr = c.NoContent(code)
	} else {
		body := map[string]string{"error": msg}
		if field != "" {
			body["field"] = field // lets a form show the message next to the field
		}
		werr = c.JSON(code, body)
	}
	if werr != nil {
		s.log.Error("writing an error response", "err", werr)
	}
}

// sameOrigin accepts WebSocket upgrades from pages served by this server
// (and from clients that send no Origin, such as command-line tools): a
// page on another site cannot open a viewer's socket with their cookies.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
