package checkpoint

import (
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf8"
)

// Magic is the 8-byte signature every checkpoint file starts with.
const Magic = "CNNVIZCK"

// Version is the format version written by Write. Read currently accepts
// only this version; files of other versions fail with ErrVersion.
const Version = 1

// Limits enforced by both Read and Write. They are far above what the
// engine needs, and exist so that a corrupt length field is rejected before
// it turns into a huge allocation.
const (
	// MaxBlobLen is the maximum size in bytes of the spec and of the meta blob.
	MaxBlobLen = 1 << 20
	// MaxTensors is the maximum number of tensors in one file.
	MaxTensors = 4096
	// MaxNameLen is the maximum length in bytes of a tensor name.
	MaxNameLen = 256
	// MaxDims is the maximum number of dimensions of a tensor.
	MaxDims = 8
	// MaxElements is the maximum number of float32 values in one tensor
	// (1 GiB of data).
	MaxElements = 1 << 28
)

// supportedVersions lists the versions Read understands, for error messages.
var supportedVersions = []uint32{1}

// castagnoli is the CRC-32C table. It is built once because MakeTable is
// not free and every Read and Write needs it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors. Format errors from Read, Write, Load and Save wrap one of
// these (test with errors.Is) and say which part of the file was involved.
// I/O errors from the underlying reader, writer or file system are wrapped
// unchanged instead.
var (
	// ErrBadMagic means the input does not start with Magic: it is not a
	// checkpoint at all.
	ErrBadMagic = errors.New("checkpoint: bad magic, not a checkpoint file")
	// ErrVersion means the file is a checkpoint of a version this package
	// cannot read.
	ErrVersion = errors.New("checkpoint: unsupported format version")
	// ErrChecksum means the stored CRC-32C does not match the content: the
	// file is corrupt.
	ErrChecksum = errors.New("checkpoint: checksum mismatch")
	// ErrTruncated means the input ended before the file did.
	ErrTruncated = errors.New("checkpoint: truncated file")
	// ErrTooBig means a length, count or size exceeds the format's limits.
	ErrTooBig = errors.New("checkpoint: size exceeds limit")
	// ErrMalformed means the content is structurally invalid: a zero
	// dimension, an empty or duplicate name, data that does not match its
	// shape, bytes after the checksum, and the like.
	ErrMalformed = errors.New("checkpoint: malformed")
)

// Tensor is one named array of float32 values, e.g. "conv1.weight" or
// "conv1.weight/adam.m". Data is stored in row-major order.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32 // len == product of Shape
}

// File is the content of a checkpoint.
type File struct {
	Spec    []byte // the model spec as JSON (opaque here)
	Meta    []byte // training state as JSON (optimiser name and settings, step, epoch...; opaque here)
	Tensors []Tensor
}

// Tensor returns the tensor called name and whether it exists. The result
// shares Shape and Data with f.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Validate returns an error, wrapping ErrTooBig or ErrMalformed, unless f
// can be written: every limit of the format is
// respected, names are non-empty, valid UTF-8 and unique, every dimension is
// positive, and every tensor's Data length equals the product of its Shape.
// Write calls it before writing anything, so an invalid File never produces
// a partial file.
func (f *File) Validate() error {
	if f == nil {
		return fmt.Errorf("%w: nil file", ErrMalformed)
	}
	if len(f.Spec) > MaxBlobLen {
		return fmt.Errorf("%w: spec is %d bytes, limit %d", ErrTooBig, len(f.Spec), MaxBlobLen)
	}
	if len(f.Meta) > MaxBlobLen {
		return fmt.Errorf("%w: meta is %d bytes, limit %d", ErrTooBig, len(f.Meta), MaxBlobLen)
	}
	if len(f.Tensors) > MaxTensors {
		return fmt.Errorf("%w: %d tensors, limit %d", ErrTooBig, len(f.Tensors), MaxTensors)
	}
	seen := make(map[string]struct{}, len(f.Tensors))
	for i, t := range f.Tensors {
		if err := checkName(fmt.Sprintf("tensor %d", i), t.Name, seen); err != nil {
			return err
		}
		what := fmt.Sprintf("tensor %d (%q)", i, t.Name)
		n, err := numElements(what, t.Shape)
		if err != nil {
			return err
		}
		if len(t.Data) != n {
			return fmt.Errorf("%w: %s: shape %v needs %d values, data has %d",
				ErrMalformed, what, t.Shape, n, len(t.Data))
		}
	}
	return nil
}

// checkName validates a tensor name and records it in seen; what names the
// tensor in error messages. Read and Write share it so that everything Read
// accepts can be written back unchanged.
func checkName(what, name string, seen map[string]struct{}) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s: empty name", ErrMalformed, what)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %s: name is %d bytes, limit %d", ErrTooBig, what, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s: name %q is not valid UTF-8", ErrMalformed, what, name)
	}
	if _, dup := seen[name]; dup {
		return fmt.Errorf("%w: %s: duplicate name %q", ErrMalformed, what, name)
	}
	seen[name] = struct{}{}
	return nil
}

// numElements returns the product of shape after checking the number of
// dimensions, that each is positive, and that the product stays within
// MaxElements; what names the tensor in error messages. The product is
// bounded one factor at a time so that it cannot overflow, even with eight
// dimensions of 2^32-1.
func numElements(what string, shape []int) (int, error) {
	if len(shape) == 0 {
		return 0, fmt.Errorf("%w: %s: no dimensions", ErrMalformed, what)
	}
	if len(shape) > MaxDims {
		return 0, fmt.Errorf("%w: %s: %d dimensions, limit %d", ErrTooBig, what, len(shape), MaxDims)
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("%w: %s: dimension %d in shape %v, must be >= 1", ErrMalformed, what, d, shape)
		}
		if n > MaxElements/d {
			return 0, fmt.Errorf("%w: %s: shape %v has more than %d elements", ErrTooBig, what, shape, MaxElements)
		}
		n *= d
	}
	return n, nil
}
