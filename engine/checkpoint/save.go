package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Save writes f to path atomically: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory. A
// reader of path therefore sees either the old checkpoint or the complete
// new one, also after a crash or power loss. On any error the previous file
// at path stays intact and the temporary file is removed. The one exception
// is a failure of the final directory fsync: the new file is then already
// in place but may not survive a crash, and Save reports the error.
//
// The new file gets permissions 0644; checkpoints are not secret, and the
// 0600 that temporary files are created with would surprise users. If path
// is a symbolic link, the link itself is replaced, not its target.
func Save(path string, f *File) (err error) {
	dir := filepath.Dir(path)
	// The temporary file must be in the same directory: rename is only
	// atomic within one file system. The leading dot keeps it out of
	// casual directory listings while it exists.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if err == nil {
			return
		}
		tmp.Close() // may already be closed; the original error matters more
		if !renamed {
			os.Remove(tmpName)
		}
		err = fmt.Errorf("save %s: %w", path, err)
	}()

	if err := Write(tmp, f); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	// Without this fsync, a crash shortly after the rename can leave path
	// naming a file whose data never reached the disk.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	renamed = true
	// The rename itself is only durable once the directory is synced.
	return syncDir(dir)
}

// tempInfix is in the name of every temporary file Save creates:
// ".<name>.tmp-<random>".
const tempInfix = ".tmp-"

// RemoveTemps deletes the temporary files that Saves into dir left behind
// when their process was killed mid-write (a kill -9 or a power loss: every
// other failure removes its own). Each is an incomplete copy of a
// checkpoint that nothing will ever read, as large as the checkpoint. It
// returns the names it removed. Call it only when no Save into dir can be
// running, such as at start-up under a lock that one process holds.
func RemoveTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, ".") || !strings.Contains(name, tempInfix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// syncDir fsyncs a directory so that a rename inside it is durable.
func syncDir(dir string) error {
	// Windows cannot fsync a directory (and does not need to: NTFS
	// journals the rename), so Sync would only return an error there.
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// Load reads the checkpoint at path; see Read for what is checked and
// which errors are returned.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err // an *fs.PathError, which already names path
	}
	defer fh.Close()
	// The file size lets read allocate each tensor exactly once.
	size := int64(-1)
	if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	f, err := read(fh, size)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return f, nil
}
