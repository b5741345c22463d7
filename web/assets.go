package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"sort"

	"github.com/labstack/echo/v4"
)

// staticFiles holds the browser code and styles: ES modules, CSS and the
// icon, served as they are (no build step).
//
//go:embed static
var staticFiles embed.FS

// assets serves the static files under /static/<version>/, where version is
// a hash of their content. Pages link to the current version, so browsers
// may cache every file for good, and a new build is fetched at once.
// Because the version is a path segment rather than a query string, the
// modules' relative imports ("./chart.js") inherit it.
type assets struct {
	files   fs.FS
	version string
}

// newAssets hashes the embedded files to name their version.
func newAssets() *assets {
	files, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic("web: static files: " + err.Error()) // the embed directive guarantees the folder
	}
	var names []string
	err = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, name)
		}
		return err
	})
	if err != nil {
		panic("web: static files: " + err.Error())
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			panic("web: static files: " + err.Error())
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(b)
	}
	return &assets{files: files, version: hex.EncodeToString(h.Sum(nil))[:12]}
}

// base is the URL prefix of the current version, ending in "/".
func (a *assets) base() string { return "/static/" + a.version + "/" }

// serve answers GET /static/:version/*. A file asked for under an older
// version is still served (a page loaded before a restart keeps working),
// but must be revalidated rather than cached for good.
func (a *assets) serve(c echo.Context) error {
	name := c.Param("*")
	if !fs.ValidPath(name) || name == "." {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	if c.Param("version") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	// Embedded files have no modification time, so the version stands in
	// as the validator that lets a revalidation end in 304 Not Modified.
	h.Set("ETag", `"`+a.version+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	f, err := a.files.Open(name)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such static file")
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	content, ok := f.(io.ReadSeeker)
	if info.IsDir() || !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such static file")
	}
	// ServeContent sets the type from the extension and answers
	// conditional and range requests.
	http.ServeContent(c.Response(), c.Request(), info.Name(), info.ModTime(), content)
	return nil
}
