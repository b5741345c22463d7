package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"cnnviz/engine"
	"cnnviz/sessions"
)

func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok")
}

func (s *Server) listPresets(c echo.Context) error {
	return c.JSON(http.StatusOK, engine.Presets())
}

func (s *Server) listSessions(c echo.Context) error {
	return c.JSON(http.StatusOK, s.sessions.List())
}

// createResponse is the answer to POST /api/sessions. The owner token is
// shown once; it is also set as a cookie on the creator's browser.
type createResponse struct {
	ID         string `json:"id"`
	OwnerToken string `json:"ownerToken"`
}

func (s *Server) createSession(c echo.Context) error {
	var settings sessions.Settings
	if err := decodeJSON(c, &settings); err != nil {
		return err
	}
	sess, token, err := s.sessions.Create(settings)
	if err != nil {
		return err
	}
	c.SetCookie(ownerCookie(sess.ID(), token))
	return c.JSON(http.StatusCreated, createResponse{ID: sess.ID(), OwnerToken: token})
}

// ownerCookie carries the owner token on the creator's browser: HttpOnly so
// page scripts cannot read it, SameSite=Strict so other sites cannot use it.
func ownerCookie(id, token string) *http.Cookie {
	return &http.Cookie{
		Name: "owner_" + id, Value: token, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600,
	}
}

// ownerToken returns the token a request presents for session id: the
// Authorization header first, else the cookie.
func ownerToken(c echo.Context, id string) string {
	if h := c.Request().Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	if ck, err := c.Cookie("owner_" + id); err == nil {
		return ck.Value
	}
	return ""
}

// ownerOnly lets a request through only with the session's owner token.
func (s *Server) ownerOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, err := s.sessions.Get(c.Param("id"))
		if err != nil {
			return err
		}
		token := ownerToken(c, sess.ID())
		if token == "" {
			return errorf(http.StatusUnauthorized, "this action needs the session's owner token (Authorization: Bearer <ownerToken>)")
		}
		if !sess.IsOwner(token) {
			return errorf(http.StatusForbidden, "the owner token does not match this session")
		}
		c.Set("session", sess)
		return next(c)
	}
}

func (s *Server) session(c echo.Context) (*sessions.Session, error) {
	if sess, ok := c.Get("session").(*sessions.Session); ok {
		return sess, nil
	}
	return s.sessions.Get(c.Param("id"))
}

// sessionSince returns the session in the path and the sequence number in
// ?since= (0 when absent), after which the history and the stream resume.
func (s *Server) sessionSince(c echo.Context) (*sessions.Session, uint64, error) {
	sess, err := s.session(c)
	if err != nil {
		return nil, 0, err
	}
	since, err := parseUint(c.QueryParam("since"), "since")
	if err != nil {
		return nil, 0, err
	}
	return sess, since, nil
}

func (s *Server) getSession(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sess.Info())
}

func (s *Server) deleteSession(c echo.Context) error {
	if err := s.sessions.Delete(c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) control(a sessions.Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, err := s.session(c)
		if err != nil {
			return err
		}
		if err := sess.Control(a); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, sess.Info())
	}
}

type probeRequest struct {
	Index *int `json:"index"`
}

func (s *Server) setProbe(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	var req probeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Index == nil {
		return errorf(http.StatusBadRequest, "index: required (a test image number)")
	}
	if err := sess.SetProbe(*req.Index); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sess.Info())
}

// DrawingRequest is a drawing to classify: width x height greyscale bytes,
// 0 background to 255 ink, as base64 ("pixels") or as a JSON array
// ("values").
type DrawingRequest struct {
	Width  int     `json:"width"`
	Height int     `json:"height"`
	Pixels string  `json:"pixels,omitempty"`
	Values []uint8 `json:"values,omitempty"`
}

// Drawing validates the request and returns the drawing.
func (r DrawingRequest) Drawing() (engine.Drawing, error) {
	var px []uint8
	switch {
	case r.Pixels != "" && r.Values != nil:
		return engine.Drawing{}, errors.New("pixels and values: send one, not both")
	case r.Pixels != "":
		var err error
		if px, err = base64.StdEncoding.DecodeString(r.Pixels); err != nil {
			return engine.Drawing{}, fmt.Errorf("pixels: not valid base64: %w", err)
		}
	default:
		px = r.Values
	}
	if r.Width <= 0 || r.Height <= 0 {
		return engine.Drawing{}, fmt.Errorf("width and height: must be positive, got %dx%d", r.Width, r.Height)
	}
	if len(px) != r.Width*r.Height {
		return engine.Drawing{}, fmt.Errorf("pixels: got %d, want width*height = %d", len(px), r.Width*r.Height)
	}
	return engine.Drawing{W: r.Width, H: r.Height, Pixels: px}, nil
}

func (s *Server) predict(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	if !s.predictLimit.allow(clientIP(c.Request())) {
		return errorf(http.StatusTooManyRequests, fmt.Sprintf("too many predictions: at most %d a second", s.predictRate))
	}
	var req DrawingRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	d, err := req.Drawing()
	if err != nil {
		return errorf(http.StatusBadRequest, err.Error())
	}
	p, err := sess.Predict(d)
	if err != nil {
		return errorf(http.StatusBadRequest, err.Error())
	}
	return c.JSON(http.StatusOK, p)
}

// history returns the stored stream events after ?since= as a JSON array,
// for clients that do not keep a WebSocket open.
func (s *Server) history(c echo.Context) error {
	sess, since, err := s.sessionSince(c)
	if err != nil {
		return err
	}
	if err := s.sessions.Sync(); err != nil { // include what was published a moment ago
		return err
	}
	events, err := s.sessions.Store().Events(sess.ID(), since)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e.Data)
	}
	buf.WriteByte(']')
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf.Bytes())
}

func (s *Server) snapshotSteps(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	steps, err := s.sessions.Store().SnapshotSteps(sess.ID())
	if err != nil {
		return err
	}
	if steps == nil {
		steps = []int64{}
	}
	return c.JSON(http.StatusOK, map[string]any{"steps": steps, "every": sess.Record().SnapshotEvery})
}

// snapshot returns the stored image frame nearest the step (at or before
// it), in the binary frame format of the stream.
func (s *Server) snapshot(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	step, err := strconv.ParseInt(c.Param("step"), 10, 64)
	if err != nil || step < 0 {
		return errorf(http.StatusBadRequest, "step: want a non-negative integer")
	}
	at, frame, err := s.sessions.Store().Snapshot(sess.ID(), step)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return errorf(http.StatusNotFound, "no snapshots yet")
		}
		return err
	}
	c.Response().Header().Set("X-Snapshot-Step", strconv.FormatInt(at, 10))
	c.Response().Header().Set("Cache-Control", "max-age=3600")
	return c.Blob(http.StatusOK, "application/octet-stream", frame)
}

func (s *Server) checkpoint(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	path := s.sessions.Store().CheckpointPath(sess.ID())
	rec := sess.Record()
	if rec.CheckpointStep < 0 {
		return errorf(http.StatusNotFound, "this session has no checkpoint yet: one is written at every epoch end and on pause or stop")
	}
	return c.Attachment(path, fmt.Sprintf("cnnviz-%s-%s-step%d.ckpt", rec.Config.Preset, sess.ID(), rec.CheckpointStep))
}

// decodeJSON reads a JSON body strictly: unknown fields and trailing data
// are errors, and messages name what was wrong.
func decodeJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he
		}
		return errorf(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "empty request body: want a JSON object")
		case errors.As(err, &se):
			return errorf(http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se))
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value))
		}
		return errorf(http.StatusBadRequest, "invalid JSON: "+err.Error())
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "trailing data after the JSON object")
	}
	return nil
}

func parseUint(s, name string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, name+": want a non-negative integer")
	}
	return v, nil
}
