package checkpoint

import (
	"bytes"
	"testing"
)

// mnistFile has the parameter shapes of the keras-mnist example CNN
// (conv 3x3x32, conv 3x3x64, dense 9216->128, dense 128->10): about 1.2M
// float32 values, 4.8 MB, the size of a typical checkpoint in this project.
func mnistFile() *File {
	shapes := []struct {
		name  string
		shape []int
	}{
		{"conv1.weight", []int{32, 1, 3, 3}},
		{"conv1.bias", []int{32}},
		{"conv2.weight", []int{64, 32, 3, 3}},
		{"conv2.bias", []int{64}},
		{"dense1.weight", []int{128, 9216}},
		{"dense1.bias", []int{128}},
		{"dense2.weight", []int{10, 128}},
		{"dense2.bias", []int{10}},
	}
	f := &File{
		Spec: []byte(`{"name":"keras-mnist"}`),
		Meta: []byte(`{"optimizer":"sgd","step":1000}`),
	}
	for _, s := range shapes {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i%997) * 1e-3
		}
		f.Tensors = append(f.Tensors, Tensor{Name: s.name, Shape: s.shape, Data: data})
	}
	return f
}

// BenchmarkWriteRead measures a full Write followed by Read of a
// keras-mnist sized checkpoint through memory, i.e. the encoding cost
// without disk I/O. The reported MB/s counts the file size once.
func BenchmarkWriteRead(b *testing.B) {
	f := mnistFile()
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, f); err != nil {
			b.Fatal(err)
		}
		if _, err := Read(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite and BenchmarkRead split BenchmarkWriteRead in two.
func BenchmarkWrite(b *testing.B) {
	f := mnistFile()
	var buf bytes.Buffer
	if err := Write(&buf, f); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead is the read half of BenchmarkWriteRead.
func BenchmarkRead(b *testing.B) {
	data := encode(b, mnistFile())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
