// Package stream fans a training session's messages out to the browsers
// watching it, over WebSockets (gorilla/websocket). A Hub holds one Topic per
// session; the training goroutine publishes to the topic, and each browser
// connection is a Client that Hub.Serve runs.
//
// # Messages
//
// Every message carries the session id and a sequence number (Seq) that the
// publisher assigns: strictly increasing per topic for durable messages,
// starting at 1, gaps allowed. A Message is encoded once, when it is built
// (a websocket.PreparedMessage), and shared by pointer by every client that
// sends it. There are three classes:
//
//   - Durable messages (Topic.Publish: metrics, epoch results, status
//     changes) are appended to the topic's in-memory log and never lost. A
//     client that connects with since = S first receives every logged
//     message with Seq > S, in order (S = 0: the whole history), then the
//     live ones; a client that reconnects with the last Seq it saw gets
//     exactly what it missed. The log grows for the life of the topic: a
//     metrics message every 200 ms for an hour is 18,000 small messages.
//   - Latest-wins messages (Topic.PublishLatest: filter and activation
//     images) live under a key. The topic keeps only the latest message of
//     each key, sent to a new client after its replay of the log, and each
//     client holds at most one unsent message per key: a newer one replaces
//     an older one that has not gone out yet.
//   - Private messages (Client.SendPrivate: prediction answers) go to one
//     client, through a small queue (Options.PrivateQueue, 16 by default)
//     that drops its oldest message when full.
//
// A client's writer sends, in this order of priority: private messages,
// durable messages, then latest-wins messages (taking the keys in turn).
//
// # Publishing never blocks
//
// Publishing takes the topic's mutex for bookkeeping only: it appends to the
// log (or fills the latest-wins slots) and wakes each client's writer through
// a channel of capacity 1, without waiting. Each client keeps a cursor into
// the log rather than a queue of durable messages, plus its latest-wins
// slots and private queue; its writer goroutine takes the next message under
// the mutex and writes it outside, so a stuck connection never holds the
// lock.
//
// # Slow consumers
//
// A client is dropped, and other clients are unaffected, when
//
//   - it falls more than Options.MaxLag (1024 by default) durable messages
//     behind the head of the log, counting only messages published after it
//     subscribed (its replay of a long history is not lag), and counting a
//     message as sent only once it is written. Latest-wins and private
//     messages never count. Publish makes the check and marks the client;
//     its writer then sends a close frame with code 1013 (try again later)
//     and a reason like "too slow: fell 1025 messages behind", and closes
//     the connection;
//   - or a write to it takes longer than Options.WriteTimeout (10 s by
//     default). Gorilla then refuses further writes, since the connection
//     broke in the middle of a frame, so no close frame can follow: the hub
//     closes the connection and the browser sees 1006 (abnormal closure).
//
// Either way Serve returns an error wrapping ErrTooSlow (whose text carries
// the same reason) and Stats.Dropped counts the client. A browser that sees
// 1013 or 1006 should reconnect after a pause, with since set to the last
// Seq it received: it then gets exactly what it missed, which is why
// dropping a slow client loses no curve point.
//
// # Connections
//
// Each connection has one reader goroutine (the one that called Serve) and
// one writer goroutine, the only one that writes data frames (gorilla allows
// one concurrent writer; gorilla's own replies to pings and close frames use
// its concurrency-safe WriteControl). The writer pings every PingInterval;
// the reader gives the connection up if nothing, not even a pong, arrives for
// PongWait. Messages larger than ReadLimit close the connection with 1009
// (message too big). Every write has a deadline.
//
// # Shutdown
//
// Hub.Close (or the end of Hub.Run's context) sends every client a close
// frame (1001 going away, "server shutting down"), closes the connections and
// waits for every goroutine the hub runs. Hub.Remove does the same for one
// topic's clients, with the reason "session deleted". Publishing to a closed
// hub or a removed topic is a no-op.
package stream
