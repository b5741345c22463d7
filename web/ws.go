package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"cnnviz/engine"
	"cnnviz/sessions"
	"cnnviz/stream"
)

// watch upgrades to the session's live stream. ?since=N resumes after
// sequence number N (0 or absent: the whole history).
func (s *Server) watch(c echo.Context) error {
	sess, since, err := s.sessionSince(c)
	if err != nil {
		return err
	}
	if err := sess.EnsureFrames(); err != nil {
		s.log.Warn("no frames for a new viewer", "session", sess.ID(), "err", err)
	}
	conn, err := s.upgrader.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered with an HTTP error
	}
	// Each connection has its own prediction budget, so a class behind one
	// NAT address is not limited as one client.
	limit := rate.NewLimiter(rate.Limit(s.predictRate), s.predictRate)
	handle := func(cl *stream.Client, msgType int, data []byte) error {
		return s.handleClientMessage(sess, cl, limit, msgType, data)
	}
	if err := s.hub.Serve(c.Request().Context(), conn, sess.ID(), since, handle); err != nil {
		s.log.Debug("viewer left", "session", sess.ID(), "err", err)
	}
	return nil
}

// ClientMessage is what a viewer may send on the stream: today, a drawing
// to classify ("predict"); the answer goes to that viewer alone.
type ClientMessage struct {
	Type string `json:"type"`
	ID   uint64 `json:"id"` // echoed in the answer, so a client can match it
	DrawingRequest
}

// decodeClientMessage parses a client's message strictly (unknown fields
// and trailing data are errors) and validates what it asks for. The
// returned id is set whenever the message got that far, so the error answer
// can name the request.
func decodeClientMessage(msgType int, data []byte) (id uint64, d engine.Drawing, err error) {
	if msgType != websocket.TextMessage {
		return 0, d, errors.New("binary messages are not accepted: send JSON text")
	}
	var msg ClientMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return 0, d, fmt.Errorf("invalid message: %w", err)
	}
	if dec.More() {
		return msg.ID, d, errors.New("invalid message: trailing data after the JSON object")
	}
	if msg.Type != "predict" {
		return msg.ID, d, fmt.Errorf("unknown message type %q (want predict)", msg.Type)
	}
	d, err = msg.Drawing()
	return msg.ID, d, err
}

func (s *Server) handleClientMessage(sess *sessions.Session, cl *stream.Client, limit *rate.Limiter, msgType int, data []byte) error {
	id, d, err := decodeClientMessage(msgType, data)
	if err != nil {
		s.sendError(sess, cl, id, err.Error())
		return nil
	}
	if !limit.Allow() {
		s.sendError(sess, cl, id, fmt.Sprintf("too many predictions: at most %d a second", s.predictRate))
		return nil
	}
	p, err := sess.Predict(d)
	if err != nil {
		s.sendError(sess, cl, id, err.Error())
		return nil
	}
	answer, err := stream.JSON("prediction", sess.ID(), 0, predictionAnswer{ID: id, Prediction: p})
	if err != nil {
		return err
	}
	// The drawing's maps follow as a kind-3 frame whose seq is the request
	// id, so the client can pair the two.
	p.Activations.Seq = id
	frame, err := p.Activations.MarshalBinary()
	if err != nil {
		return err
	}
	bin, err := stream.NewBinary(id, frame)
	if err != nil {
		return err
	}
	cl.SendPrivate(answer)
	cl.SendPrivate(bin)
	return nil
}

type predictionAnswer struct {
	ID uint64 `json:"id"`
	*sessions.Prediction
}

func (s *Server) sendError(sess *sessions.Session, cl *stream.Client, id uint64, message string) {
	msg, err := stream.JSON("error", sess.ID(), 0, map[string]any{"id": id, "message": message})
	if err == nil {
		cl.SendPrivate(msg)
	}
}
