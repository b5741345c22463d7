package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveTemps leaves a directory as a kill -9 in the middle of a Save
// would (a partial temporary file beside the previous checkpoint), with
// other files around, and checks that only the temporary file goes.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ckpt")
	if err := Save(path, smallFile()); err != nil {
		t.Fatal(err)
	}
	// The name Save gives its temporary file, with half a checkpoint in it.
	tmp, err := os.CreateTemp(dir, ".model.ckpt.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	whole := encode(t, smallFile())
	tmp.Write(whole[:len(whole)/2])
	tmp.Close()
	for _, name := range []string{".keep", "notes.tmp-1", "other.ckpt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".dir.tmp-1"), 0o755); err != nil {
		t.Fatal(err)
	}

	removed, err := RemoveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Base(tmp.Name())}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	want := []string{".dir.tmp-1", ".keep", "model.ckpt", "notes.tmp-1", "other.ckpt"}
	if names := dirNames(t, dir); !slices.Equal(names, want) {
		t.Errorf("left %q, want %q", names, want)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("the checkpoint beside the temporary file: %v", err)
	}
	if _, err := RemoveTemps(filepath.Join(dir, "missing")); err == nil {
		t.Error("RemoveTemps of a missing directory succeeded")
	}
}
