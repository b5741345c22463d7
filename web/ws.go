package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"cnnviz/sessions"
	"cnnviz/stream"
)

// watch upgrades to the session's live stream. ?since=N resumes after
// sequence number N (0 or absent: the whole history).
func (s *Server) watch(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return err
	}
	since, err := parseUint(c.QueryParam("since"), "since")
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
	handle := func(cl *stream.Client, msgType int, data []byte) error {
		return s.handleClientMessage(sess, cl, msgType, data)
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

// errFatal marks client messages after which the connection is closed.
var errFatal = errors.New("fatal")

func (s *Server) handleClientMessage(sess *sessions.Session, cl *stream.Client, msgType int, data []byte) error {
	if msgType != websocket.TextMessage {
		s.sendError(sess, cl, 0, "binary messages are not accepted: send JSON text")
		return nil
	}
	var msg ClientMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		s.sendError(sess, cl, 0, "invalid message: "+err.Error())
		return nil
	}
	switch msg.Type {
	case "predict":
		d, err := msg.Drawing()
		if err != nil {
			s.sendError(sess, cl, msg.ID, err.Error())
			return nil
		}
		p, err := sess.Predict(d)
		if err != nil {
			s.sendError(sess, cl, msg.ID, err.Error())
			return nil
		}
		answer, err := stream.JSON("prediction", sess.ID(), 0, predictionAnswer{ID: msg.ID, Prediction: p})
		if err != nil {
			return err
		}
		p.Activations.Seq = msg.ID
		frame, err := p.Activations.MarshalBinary()
		if err != nil {
			return err
		}
		bin, err := stream.NewBinary(msg.ID, frame)
		if err != nil {
			return err
		}
		cl.SendPrivate(answer)
		cl.SendPrivate(bin)
	default:
		s.sendError(sess, cl, msg.ID, fmt.Sprintf("unknown message type %q (want predict)", msg.Type))
	}
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
