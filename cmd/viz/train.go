package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cnnviz/engine"
)

// trainCommand trains a model headless: a progress line while an epoch
// runs, test loss and accuracy after each, a checkpoint at every epoch end.
func trainCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs)
	var (
		data       = fs.String("data", "", "folder with the MNIST IDX files (default: the GoMNIST module in the Go module cache)")
		epochs     = fs.Int("epochs", 0, "epochs to train (default: the preset's)")
		batch      = fs.Int("batch", 0, "batch size (default: the preset's)")
		optimizer  = fs.String("optimizer", "", "sgd, adam or adadelta (default: the preset's)")
		lr         = fs.Float64("lr", 0, "learning rate (default: the optimiser's, as in Keras)")
		momentum   = fs.Float64("momentum", 0, "SGD momentum")
		seed       = fs.Uint64("seed", 1, "random seed: weights, shuffling and dropout")
		out        = fs.String("out", "", "checkpoint to write at each epoch end (default: checkpoints/<preset>-seed<seed>.ckpt)")
		resume     = fs.String("resume", "", "checkpoint to resume from (its model, optimiser and epoch)")
		trainLimit = fs.Int("train-limit", 0, "use only the first N training images (0: all)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("train: unexpected argument %q", fs.Arg(0))
	}
	spec, preset, err := mf.spec()
	if err != nil {
		return err
	}
	dir, train, test, err := loadMNIST(*data)
	if err != nil {
		return err
	}
	if *trainLimit > 0 && *trainLimit < train.Len() {
		train = train.Slice(0, *trainLimit)
	}

	st := engine.TrainState{BatchSize: orInt(*batch, preset.BatchSize), Epochs: orInt(*epochs, preset.Epochs)}
	var (
		model *engine.Model
		opt   engine.Optimizer
	)
	if *resume != "" {
		var saved engine.TrainState
		model, opt, saved, err = engine.LoadCheckpoint(*resume)
		if err != nil {
			return err
		}
		st.Epoch = saved.Epoch
		if *batch == 0 {
			st.BatchSize = saved.BatchSize
		}
		if *epochs == 0 {
			st.Epochs = saved.Epochs
		}
	} else {
		cfg := preset.Optimizer
		if *optimizer != "" && *optimizer != cfg.Name {
			cfg = engine.OptimizerConfig{Name: *optimizer}
		}
		if *lr != 0 {
			cfg.LearningRate = *lr
		}
		if *momentum != 0 {
			cfg.Momentum = *momentum
		}
		if opt, err = engine.NewOptimizer(cfg); err != nil {
			return err
		}
		if model, err = engine.Build(spec, *seed); err != nil {
			return err
		}
	}
	if st.BatchSize <= 0 || st.Epochs <= 0 {
		return fmt.Errorf("train: batch size and epochs must be positive")
	}
	path := *out
	if path == "" {
		name := spec.Name
		if name == "" {
			name = "model"
		}
		path = filepath.Join("checkpoints", fmt.Sprintf("%s-seed%d.ckpt", name, model.Seed()))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}

	cfg := opt.Config()
	fmt.Fprintf(stdout, "model %s (%d weights), %s lr %g, batch %d, %d epochs, seed %d\n",
		orString(spec.Name, "custom"), model.ParamCount(), cfg.Name, cfg.LearningRate, st.BatchSize, st.Epochs, model.Seed())
	fmt.Fprintf(stdout, "data %s: %d training, %d test images\n", dir, train.Len(), test.Len())

	tr := engine.NewTrainer(model, opt, train, st.BatchSize, st.Epochs)
	tr.SeekEpoch(st.Epoch)
	bar := newProgress(stdout)
	for !tr.Done() {
		if err := ctx.Err(); err != nil {
			bar.clear()
			fmt.Fprintf(stdout, "interrupted; the last checkpoint is %s\n", path)
			return nil
		}
		epochStart := time.Now()
		var loss, correct, seen float64
		for {
			r := tr.Step()
			loss += float64(r.Loss) * float64(r.Images)
			correct += float64(r.Correct)
			seen += float64(r.Images)
			bar.update(r, loss/seen, correct/seen, time.Since(epochStart), seen, st.Epochs)
			if r.EpochEnd || ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			continue // report and stop at the top of the loop, keeping the last epoch's checkpoint
		}
		secs := time.Since(epochStart).Seconds()
		ev := engine.Evaluate(model, test, 500)
		epoch, _ := tr.Position()
		bar.clear()
		fmt.Fprintf(stdout, "epoch %2d/%d  train loss %.4f acc %6.2f%%  test loss %.4f acc %6.2f%%  %.1f s (%.0f images/s)\n",
			epoch, st.Epochs, loss/seen, 100*correct/seen, ev.Loss, 100*ev.Accuracy, secs, seen/secs)
		st.Epoch = epoch
		if err := engine.SaveCheckpoint(path, model, opt, st); err != nil {
			return err
		}
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkpoint %s sha256 %s\n", path, sum)
	return nil
}

// progress draws a one-line progress bar on a terminal. When the output is
// not a terminal (a log file, CI), it prints a plain line every 10 seconds
// instead, so logs stay readable.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	width    int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(r engine.StepResult, loss, acc float64, elapsed time.Duration, seen float64, epochs int) {
	every := 10 * time.Second
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every && !r.EpochEnd {
		return
	}
	p.last = time.Now()
	done := r.Batch + 1
	rate := seen / elapsed.Seconds()
	eta := time.Duration(float64(r.BatchesPerEpoch-done) * float64(elapsed) / float64(done)).Round(time.Second)
	const barWidth = 24
	filled := barWidth * done / r.BatchesPerEpoch
	line := fmt.Sprintf("epoch %d/%d [%s%s] %d/%d  %.0f images/s  loss %.4f  acc %.2f%%  ETA %s",
		r.Epoch+1, epochs, strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled),
		done, r.BatchesPerEpoch, rate, loss, 100*acc, eta)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%-*s", p.width, line)
		p.width = len(line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// clear erases the bar so a summary line can take its place.
func (p *progress) clear() {
	if p.terminal && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func orInt(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

func orString(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
