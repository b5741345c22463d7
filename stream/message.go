package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Message is one WebSocket data frame, encoded once when it is built and then
// shared, by pointer, by the topic's log, the topic's latest-wins slots and
// every client that sends it. Build it with NewText, NewBinary or JSON; a
// Message is immutable once built and safe to share between goroutines.
type Message struct {
	// Seq is the sequence number the publisher gave the message. Durable
	// messages of a topic have strictly increasing Seq (gaps are allowed);
	// latest-wins and private messages carry whatever the publisher chose.
	Seq uint64
	// Binary says whether the frame is a binary frame (image frames) rather
	// than a text frame (JSON).
	Binary bool
	// Data is the frame's payload. It is read-only: the hub and every
	// client share it.
	Data []byte

	// prepared holds the frame as it goes on the wire, so a broadcast to n
	// clients costs one encoding, not n.
	prepared *websocket.PreparedMessage
}

// errInvalidUTF8 reports a text frame whose payload is not UTF-8, which
// browsers answer by failing the connection.
var errInvalidUTF8 = errors.New("stream: text message is not valid utf-8")

// NewText builds a text frame from data, which must be UTF-8 (JSON usually).
// The Message keeps data: the caller must not modify it afterwards.
func NewText(seq uint64, data []byte) (*Message, error) {
	if !utf8.Valid(data) {
		return nil, errInvalidUTF8
	}
	return newMessage(seq, false, data)
}

// NewBinary builds a binary frame from data (an encoded ImageFrame usually).
// The Message keeps data: the caller must not modify it afterwards.
func NewBinary(seq uint64, data []byte) (*Message, error) {
	return newMessage(seq, true, data)
}

func newMessage(seq uint64, binary bool, data []byte) (*Message, error) {
	typ := websocket.TextMessage
	if binary {
		typ = websocket.BinaryMessage
	}
	pm, err := websocket.NewPreparedMessage(typ, data)
	if err != nil {
		return nil, fmt.Errorf("stream: prepare message %d: %w", seq, err)
	}
	return &Message{Seq: seq, Binary: binary, Data: data, prepared: pm}, nil
}

// Envelope is the JSON shape of every text frame the server sends:
//
//	{"type": "metrics", "session": "a1b2", "seq": 42, "data": {...}}
//
// Type names the payload's kind (the web layer defines them), Session is the
// training session's id and Seq the topic's sequence number.
type Envelope struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
	Data    any    `json:"data"`
}

// JSON builds a text frame holding the standard envelope
// {"type": typ, "session": session, "seq": seq, "data": payload}.
func JSON(typ, session string, seq uint64, payload any) (*Message, error) {
	b, err := json.Marshal(Envelope{Type: typ, Session: session, Seq: seq, Data: payload})
	if err != nil {
		return nil, fmt.Errorf("stream: encode %s message: %w", typ, err)
	}
	// encoding/json always produces UTF-8, so skip NewText's check.
	return newMessage(seq, false, b)
}
