package mnist

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// updateSubset regenerates testdata/mnist from the full set in the module
// cache. Run it as
//
//	go test ./engine/mnist -run TestSubset -update-subset
var updateSubset = flag.Bool("update-subset", false, "regenerate testdata/mnist from the GoMNIST module data")

// subsetDir is the checked-in subset, relative to this package's directory
// (where go test runs the tests).
const subsetDir = "../../testdata/mnist"

// Sizes of the checked-in subset: the first examples of each split.
const (
	subsetTrain = 4000
	subsetTest  = 1000
)

// Label counts of the full MNIST splits, as published with the data set.
var (
	fullTrainCounts = [NumClasses]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	fullTestCounts  = [NumClasses]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
)

// loadFull loads the full set once per test binary; several tests and the
// subset regeneration need it, and it takes a noticeable fraction of a second.
var loadFull = sync.OnceValues(func() ([2]*Set, error) {
	dir, err := ModuleDataDir()
	if err != nil {
		return [2]*Set{}, err
	}
	train, test, err := Load(dir)
	return [2]*Set{train, test}, err
})

// fullOrSkip returns the full MNIST set, skipping the test if the GoMNIST
// module is not in the module cache and failing it if the data is broken.
func fullOrSkip(tb testing.TB) (train, test *Set) {
	tb.Helper()
	sets, err := loadFull()
	if errors.Is(err, ErrNotFound) {
		tb.Skipf("full MNIST not available: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return sets[0], sets[1]
}

// labelCounts returns how often each digit occurs.
func labelCounts(labels []uint8) [NumClasses]int {
	var c [NumClasses]int
	for _, l := range labels {
		c[l]++
	}
	return c
}

func TestSetAccessors(t *testing.T) {
	s := &Set{
		Images: []uint8{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23},
		Labels: []uint8{7, 8, 9},
		Rows:   2, Cols: 2,
	}
	if s.Len() != 3 || s.ImageSize() != 4 {
		t.Fatalf("Len, ImageSize = %d, %d, want 3, 4", s.Len(), s.ImageSize())
	}
	if got := s.Image(1); !bytes.Equal(got, []uint8{10, 11, 12, 13}) || cap(got) != 4 {
		t.Errorf("Image(1) = %v (cap %d), want [10 11 12 13] (cap 4)", got, cap(got))
	}
	sub := s.Slice(1, 3)
	if sub.Len() != 2 || sub.Rows != 2 || sub.Cols != 2 || !bytes.Equal(sub.Image(1), s.Image(2)) {
		t.Errorf("Slice(1, 3) = %+v, want images 1 and 2 of %+v", sub, s)
	}
	sub.Images[0] = 99
	if s.Images[4] != 99 {
		t.Error("Slice does not share memory with the original set")
	}
	if got := s.Slice(0, 1); cap(got.Images) != 4 || cap(got.Labels) != 1 {
		t.Errorf("Slice(0, 1) capacities = %d, %d, want 4, 1", cap(got.Images), cap(got.Labels))
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// idxFiles encodes a set as raw IDX image and label files.
func idxFiles(t testing.TB, s *Set) (images, labels []byte) {
	t.Helper()
	var ib, lb bytes.Buffer
	if err := WriteImages(&ib, s.Images, len(s.Images)/(s.Rows*s.Cols), s.Rows, s.Cols); err != nil {
		t.Fatal(err)
	}
	if err := WriteLabels(&lb, s.Labels); err != nil {
		t.Fatal(err)
	}
	return ib.Bytes(), lb.Bytes()
}

// synthetic returns a set of n random images of size rows x cols with
// labels cycling through 0..9.
func synthetic(n, rows, cols int, seed uint64) *Set {
	s := &Set{Images: randomBytes(n*rows*cols, seed), Labels: make([]uint8, n), Rows: rows, Cols: cols}
	for i := range s.Labels {
		s.Labels[i] = uint8(i % NumClasses)
	}
	return s
}

func TestLoad(t *testing.T) {
	train, test := synthetic(6, 3, 3, 4), synthetic(4, 3, 3, 5)
	trainImg, trainLbl := idxFiles(t, train)
	testImg, testLbl := idxFiles(t, test)
	// All four files, keyed by file name, for the cases to adjust.
	base := map[string][]byte{
		TrainImagesFile: trainImg, TrainLabelsFile: trainLbl,
		TestImagesFile: testImg, TestLabelsFile: testLbl,
	}
	short := synthetic(5, 3, 3, 4)
	_, shortLbl := idxFiles(t, short)
	badLabels := synthetic(6, 3, 3, 4)
	badLabels.Labels[2] = 10
	_, badLbl := idxFiles(t, badLabels)
	smallTestImg, _ := idxFiles(t, synthetic(4, 2, 2, 6))

	tests := []struct {
		name    string
		files   map[string][]byte // name (with or without .gz) -> raw IDX bytes
		wantErr error
		wantMsg string
	}{
		{name: "raw files", files: base},
		{name: "gzip files", files: gzipAll(t, base)},
		{name: "gzip preferred over raw", files: with(gzipAll(t, base), TrainImagesFile, []byte("not idx"))},
		{name: "mismatched train counts", files: with(base, TrainLabelsFile, shortLbl), wantErr: ErrCountMismatch,
			wantMsg: "train-images-idx3-ubyte has 6 images but"},
		{name: "mismatched test counts", files: with(base, TestLabelsFile, shortLbl), wantErr: ErrCountMismatch,
			wantMsg: "t10k-images-idx3-ubyte has 4 images but"},
		{name: "label out of range", files: with(base, TrainLabelsFile, badLbl), wantErr: ErrBadLabel,
			wantMsg: "label 2 is 10, want 0..9"},
		{name: "missing file", files: without(base, TestLabelsFile), wantErr: ErrNotFound,
			wantMsg: "no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"},
		{name: "shape mismatch", files: with(base, TestImagesFile, smallTestImg), wantErr: ErrShapeMismatch,
			wantMsg: "3x3 and 2x2"},
		{name: "labels in images file", files: with(base, TrainImagesFile, trainLbl), wantErr: ErrBadMagic,
			wantMsg: "train-images-idx3-ubyte: mnist: bad magic number"},
		{name: "truncated gzip", files: with(gzipAll(t, base), TestImagesFile+".gz", gz(t, testImg)[:40]), wantErr: ErrTruncated,
			wantMsg: "t10k-images-idx3-ubyte.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			gotTrain, gotTest, err := Load(dir)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("Load error = %q, want it to contain %q", err, tt.wantMsg)
				}
				return
			}
			for _, p := range []struct{ got, want *Set }{{gotTrain, train}, {gotTest, test}} {
				if p.got.Rows != p.want.Rows || p.got.Cols != p.want.Cols ||
					!bytes.Equal(p.got.Images, p.want.Images) || !bytes.Equal(p.got.Labels, p.want.Labels) {
					t.Errorf("Load returned %+v, want %+v", p.got, p.want)
				}
			}
		})
	}
}

// gzipAll returns files with every entry gzip-compressed under name+".gz".
func gzipAll(t testing.TB, files map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		out[name+".gz"] = gz(t, b)
	}
	return out
}

// with returns a copy of files with name set to b.
func with(files map[string][]byte, name string, b []byte) map[string][]byte {
	out := make(map[string][]byte, len(files)+1)
	for k, v := range files {
		out[k] = v
	}
	out[name] = b
	return out
}

// without returns a copy of files lacking name.
func without(files map[string][]byte, name string) map[string][]byte {
	out := with(files, name, nil)
	delete(out, name)
	return out
}

func TestWriteSubset(t *testing.T) {
	train, test := synthetic(10, 4, 5, 7), synthetic(6, 4, 5, 8)
	badLabels := synthetic(3, 4, 5, 9)
	badLabels.Labels[0] = 200
	tests := []struct {
		name          string
		train, test   *Set
		nTrain, nTest int
		wantErr       bool
	}{
		{"prefix", train, test, 7, 2, false},
		{"everything", train, test, 10, 6, false},
		{"empty", train, test, 0, 0, false},
		{"too many train", train, test, 11, 2, true},
		{"too many test", train, test, 2, 7, true},
		{"negative", train, test, -1, 2, true},
		{"bad labels", badLabels, test, 3, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sub", "dir") // must be created
			err := WriteSubset(dir, tt.train, tt.test, tt.nTrain, tt.nTest)
			if tt.wantErr {
				if err == nil {
					t.Fatal("WriteSubset succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range fileNames {
				if _, err := os.Stat(filepath.Join(dir, name+".gz")); err != nil {
					t.Errorf("WriteSubset did not write %s.gz: %v", name, err)
				}
			}
			gotTrain, gotTest, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			wantTrain, wantTest := tt.train.Slice(0, tt.nTrain), tt.test.Slice(0, tt.nTest)
			if !bytes.Equal(gotTrain.Images, wantTrain.Images) || !bytes.Equal(gotTrain.Labels, wantTrain.Labels) ||
				!bytes.Equal(gotTest.Images, wantTest.Images) || !bytes.Equal(gotTest.Labels, wantTest.Labels) {
				t.Error("Load after WriteSubset returned different data")
			}
		})
	}
}

// TestSubset checks the checked-in subset in testdata/mnist: sizes, labels,
// and, when the full set is available, that it is exactly the first
// examples of each split. With -update-subset it first regenerates the
// subset from the full set:
//
//	go test ./engine/mnist -run TestSubset -update-subset
func TestSubset(t *testing.T) {
	if *updateSubset {
		fullTrain, fullTest := fullOrSkip(t)
		if err := WriteSubset(subsetDir, fullTrain, fullTest, subsetTrain, subsetTest); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d training and %d test examples to %s", subsetTrain, subsetTest, subsetDir)
	}

	train, test, err := Load(subsetDir)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./engine/mnist -run TestSubset -update-subset)", err)
	}
	if train.Len() != subsetTrain || test.Len() != subsetTest {
		t.Errorf("subset has %d/%d examples, want %d/%d", train.Len(), test.Len(), subsetTrain, subsetTest)
	}
	if train.Rows != 28 || train.Cols != 28 {
		t.Errorf("subset images are %dx%d, want 28x28", train.Rows, train.Cols)
	}
	for name, s := range map[string]*Set{"train": train, "test": test} {
		for digit, c := range labelCounts(s.Labels) {
			// Every digit makes up about a tenth of any prefix of MNIST.
			if c < s.Len()/20 {
				t.Errorf("%s subset has only %d examples of digit %d", name, c, digit)
			}
		}
	}

	sets, err := loadFull()
	if err != nil {
		t.Logf("full set not available, not comparing the subset with it: %v", err)
		return
	}
	if !bytes.Equal(train.Images, sets[0].Slice(0, subsetTrain).Images) ||
		!bytes.Equal(train.Labels, sets[0].Slice(0, subsetTrain).Labels) ||
		!bytes.Equal(test.Images, sets[1].Slice(0, subsetTest).Images) ||
		!bytes.Equal(test.Labels, sets[1].Slice(0, subsetTest).Labels) {
		t.Error("testdata/mnist is not the first examples of the full set; regenerate with -update-subset")
	}
}

// TestFullSet loads the real MNIST from the module cache and checks it
// against the published sizes and label counts.
func TestFullSet(t *testing.T) {
	train, test := fullOrSkip(t)
	tests := []struct {
		name       string
		s          *Set
		n          int
		counts     [NumClasses]int
		firstLabel uint8
	}{
		{"train", train, 60000, fullTrainCounts, 5},
		{"test", test, 10000, fullTestCounts, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.s.Len() != tt.n || tt.s.Rows != 28 || tt.s.Cols != 28 || len(tt.s.Images) != tt.n*28*28 {
				t.Fatalf("%d images of %dx%d (%d bytes), want %d of 28x28",
					tt.s.Len(), tt.s.Rows, tt.s.Cols, len(tt.s.Images), tt.n)
			}
			if got := labelCounts(tt.s.Labels); got != tt.counts {
				t.Errorf("label counts = %v, want %v", got, tt.counts)
			}
			if tt.s.Labels[0] != tt.firstLabel {
				t.Errorf("first label = %d, want %d", tt.s.Labels[0], tt.firstLabel)
			}
			// MNIST digits are centred with a blank border, and ink is
			// saturated somewhere in each image.
			img := tt.s.Image(0)
			if img[0] != 0 || img[len(img)-1] != 0 || bytes.IndexByte(img, 255) < 0 && bytes.IndexByte(img, 254) < 0 {
				t.Errorf("first image does not look like an MNIST digit: %v", img)
			}
		})
	}
}

// BenchmarkLoadFull measures Load of the full set from the module cache;
// the reported MB/s counts uncompressed bytes.
func BenchmarkLoadFull(b *testing.B) {
	dir, err := ModuleDataDir()
	if errors.Is(err, ErrNotFound) {
		b.Skipf("full MNIST not available: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(16 + 60000*28*28 + 8 + 60000 + 16 + 10000*28*28 + 8 + 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
