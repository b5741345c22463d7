package main

import (
	"flag"
	"fmt"
	"io"

	"cnnviz/engine"
)

func summaryCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m modelFlags
	m.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec, _, err := m.spec()
	if err != nil {
		return err
	}
	model, err := engine.Build(spec, 1)
	if err != nil {
		return err
	}
	name := spec.Name
	if name == "" {
		name = "model"
	}
	fmt.Fprintf(stdout, "%s: %d weights\n\n", name, model.ParamCount())
	return engine.Summarize(model).WriteText(stdout)
}
