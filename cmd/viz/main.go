// Command viz trains convolutional networks on MNIST and shows how they
// learn.
//
//	viz [serve] [flags]   run the web server (the default)
//	viz train   [flags]   train a model headless, with a progress bar
//	viz summary [flags]   print a model's per-layer cost table
//	viz subset  [flags]   write a small MNIST subset (testdata/mnist)
//
// Run "viz <command> -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "viz:", err)
		os.Exit(1)
	}
}

// run dispatches to a subcommand. It takes its context, arguments and
// outputs as parameters so that tests can drive it like the shell does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || len(args[0]) > 0 && args[0][0] == '-' && args[0] != "-h" && args[0] != "-help" && args[0] != "--help" {
		return serveCommand(ctx, args, stdout, stderr)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCommand(ctx, rest, stdout, stderr)
	case "train":
		return trainCommand(ctx, rest, stdout, stderr)
	case "summary":
		return summaryCommand(rest, stdout, stderr)
	case "subset":
		return subsetCommand(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n", cmd)
	return usage(stderr)
}

func usage(w io.Writer) error {
	fmt.Fprint(w, `viz trains convolutional networks on MNIST and shows how they learn.

Commands:
  viz [serve] [flags]   run the web server on 127.0.0.1:8080 (the default command)
  viz train   [flags]   train a model headless, with a progress bar and per-epoch test accuracy
  viz summary [flags]   print a model's per-layer table: output volume, memory, weights
  viz subset  [flags]   write a small MNIST subset in IDX format (as in testdata/mnist)

Run "viz <command> -h" for the flags of a command.
`)
	return flag.ErrHelp
}
