package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	e := startAPIEnv(t)
	for _, path := range []string{"/", "/api/sessions", "/healthz"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
}

func TestCrossSiteRequestsRefused(t *testing.T) {
	e := startAPIEnv(t)
	cases := []struct {
		header, value string
		want          int
	}{
		{"Origin", "http://evil.example", http.StatusForbidden},
		{"Sec-Fetch-Site", "cross-site", http.StatusForbidden},
		{"Origin", strings.TrimSuffix(e.srv.URL, "/"), http.StatusCreated},
		{"Sec-Fetch-Site", "same-origin", http.StatusCreated},
		{"", "", http.StatusCreated}, // not a browser: curl, scripts
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/sessions", strings.NewReader(`{"preset": "tiny"}`))
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %q: status %d, want %d", tc.header, tc.value, resp.StatusCode, tc.want)
		}
	}
}
