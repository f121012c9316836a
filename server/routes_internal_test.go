package server

import (
	"context"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The table in routes.go is the API: every route the server mounts is in
// it with the caller it admits and the package serving it, and nothing
// else is.
func TestRouteTable(t *testing.T) {
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`^//\t(GET|POST|PUT|DELETE)\s+(\S+)\s+(public|admin|any key, links|any key|[a-z]+:[a-z]+)\s+(\w+)$`)
	want := map[string]string{}
	for _, line := range strings.Split(string(src), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			want[m[1]+" "+m[2]] = m[3] + " | " + m[4]
		}
	}
	if len(want) < 40 {
		t.Fatalf("read %d rows of the table; the pattern no longer matches its lines", len(want))
	}

	cfg := Config{RootKey: "routetable-root-key-0123456789abcdef", Stderr: io.Discard}
	cfg.Server.Data = t.TempDir()
	cfg.Logging.Level = "error"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got := map[string]string{"GET /healthz": "public | server", "GET /metrics": "public | server"}
	for pkg, rs := range s.domainRoutes() {
		for _, r := range rs {
			who := string(r.Scope)
			switch {
			case r.Public:
				who = "public"
			case r.Scope == "" && r.Keyless != nil:
				who = "any key, links"
			case r.Scope == "":
				who = "any key"
			}
			if _, dup := got[r.Pattern]; dup {
				t.Errorf("%s is mounted twice", r.Pattern)
			}
			got[r.Pattern] = who + " | " + pkg
		}
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if want[k] != got[k] {
			t.Errorf("%s: the table says %q, the server mounts %q", k, want[k], got[k])
		}
	}
}
