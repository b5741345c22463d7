package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"cnnviz/sessions"
	"cnnviz/stream"
	"cnnviz/web"
)

// serveCommand runs the product: the web server, the training sessions and
// their streams, until ctx is cancelled (Ctrl-C, SIGTERM).
func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr       = fs.String("addr", "127.0.0.1:8080", "address to listen on; 0.0.0.0:8080 opens it to the network")
		dataDir    = fs.String("data-dir", "data", "folder for sessions, history and checkpoints")
		data       = fs.String("data", "", "folder with the MNIST IDX files (default: the GoMNIST module in the Go module cache)")
		maxRunning = fs.Int("max-running", 0, "sessions that train at once; the rest queue (default: one per CPU)")
		maxModelMB = fs.Int64("max-model-mb", 2048, "refuse models whose training step would need more memory than this")
		starter    = fs.Bool("starter", true, "on first start, create and train a session with the tiny preset, so there is a model to draw for at once")
		trainLimit = fs.Int("train-limit", 0, "train sessions on the first N training images only (0: all), for short epochs on a slow machine; keep it the same across restarts")
		verbose    = fs.Bool("v", false, "log debug messages")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	_, train, test, err := loadMNIST(*data)
	if err != nil {
		return err
	}
	if *trainLimit > 0 && *trainLimit < train.Len() {
		train = train.Slice(0, *trainLimit)
	}
	hub := stream.NewHub(stream.Options{})
	mgr, err := sessions.Open(sessions.Options{
		Dir: *dataDir, Hub: hub, Train: train, Test: test, MaxRunning: *maxRunning, Log: log,
		MaxModelBytes: *maxModelMB << 20,
	})
	if err != nil {
		hub.Close()
		return err
	}
	var starterLink string
	if *starter && len(mgr.List()) == 0 {
		id, token, err := startStarter(mgr)
		if err != nil {
			log.Error("starter session", "err", err)
		} else {
			starterLink = fmt.Sprintf("/sessions/%s?owner=%s", id, token)
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		hub.Close()
		return errors.Join(err, mgr.Close())
	}
	// On 0.0.0.0 the pages' join and teacher links use the first network
	// address, not the one a request came to: the teacher's own browser
	// asks for localhost, which no student can reach.
	urls := shareURLs(ln.Addr())
	shareURL := ""
	if len(urls) > 0 {
		shareURL = strings.TrimSuffix(urls[0], "/")
	}
	srv := &http.Server{
		Handler:           web.New(web.Options{Sessions: mgr, Hub: hub, Log: log, ShareURL: shareURL}).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "cnnviz is running at http://%s/ (data in %s; Ctrl-C stops it)\n", localAddr(ln.Addr()), *dataDir)
	shareHost := "http://" + ln.Addr().String()
	if len(urls) > 0 {
		fmt.Fprintln(stdout, "open to the network; share with your class:")
		for _, u := range urls {
			fmt.Fprintf(stdout, "  %s\n", u)
		}
		shareHost = shareURL
	}
	if starterLink != "" {
		// The owner link is printed, never logged: whoever started the
		// server controls the starter session. Keep it to yourself.
		fmt.Fprintf(stdout, "starter session, teacher link (controls it; keep it to yourself): %s%s\n", shareHost, starterLink)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		hub.Close()
		return errors.Join(err, mgr.Close())
	}
	// Shut down in order: stop taking requests, close the viewers'
	// sockets (http.Server.Shutdown does not track hijacked connections),
	// then let every training session checkpoint and flush the store.
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpErr := srv.Shutdown(shutdownCtx)
	hub.Close()
	return errors.Join(httpErr, mgr.Close())
}

// localAddr is the address to open on this machine: the listener's, or
// localhost for one on every interface, which the listener names "[::]" or
// "0.0.0.0", addresses no browser should be sent to.
func localAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
	}
	return addr.String()
}

// shareURLs lists the addresses other machines can reach the server at,
// when it listens on every interface (0.0.0.0 or ::); none for a loopback
// or a specific address.
func shareURLs(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return nil
	}
	ifaces, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var urls []string
	for _, a := range ifaces {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.To4() == nil || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		urls = append(urls, fmt.Sprintf("http://%s/", net.JoinHostPort(ipnet.IP.String(), fmt.Sprint(tcp.Port))))
	}
	return urls
}

// startStarter creates the first session a new user sees: the tiny preset,
// training at once. It reaches ~90% within seconds and ~98% after its one
// epoch, so the drawing canvas has a useful model almost immediately, and
// the user sees training happen without doing anything.
func startStarter(mgr *sessions.Manager) (id, token string, err error) {
	sess, token, err := mgr.Create(sessions.Settings{Name: "Starter: tiny", Preset: "tiny"})
	if err != nil {
		return "", "", err
	}
	return sess.ID(), token, sess.Control(sessions.ActionStart)
}
