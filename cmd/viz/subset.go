package main

import (
	"flag"
	"fmt"
	"io"

	"cnnviz/engine/mnist"
)

// subsetCommand writes the first -train and -test examples of the full data
// set as gzip IDX files; testdata/mnist was made with the defaults.
func subsetCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("subset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "folder with the full MNIST IDX files (default: the GoMNIST module)")
	out := fs.String("out", "testdata/mnist", "folder to write")
	nTrain := fs.Int("train", 4000, "training examples to keep")
	nTest := fs.Int("test", 1000, "test examples to keep")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, train, test, err := loadMNIST(*data)
	if err != nil {
		return err
	}
	if err := mnist.WriteSubset(*out, train, test, *nTrain, *nTest); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d training and %d test examples to %s\n", *nTrain, *nTest, *out)
	return nil
}
