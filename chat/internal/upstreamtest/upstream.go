// Package upstreamtest is a fake model provider on loopback, speaking
// OpenAI's (streaming or not) and Ollama's streaming protocols, for the tests of chat/llm's
// adapters and of chat's handler in front of them.
package upstreamtest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Serve answers one request to an Upstream; body is the request's JSON.
type Serve func(u *Upstream, w http.ResponseWriter, r *http.Request, body map[string]any)

// Upstream is a fake model provider on loopback. Its behaviour is set per
// test; it records what each request carried and whether the request's
// context ended (the caller cancelled or went away).
type Upstream struct {
	Srv *httptest.Server
	// Serve answers the requests; a test may change it between requests.
	Serve Serve
	// Arrived gets a value as each request reaches Serve.
	Arrived chan struct{}

	mu      sync.Mutex
	headers []http.Header
	bodies  []map[string]any
	gone    chan struct{} // gets a value when a handler sees r.Context().Done()
	release chan struct{} // closed to end every stall
	conns   atomic.Int64  // connections accepted
}

// Conns is how many connections the Upstream has accepted.
func (u *Upstream) Conns() int { return int(u.conns.Load()) }

// New starts an Upstream that answers with serve; it closes at t's cleanup.
func New(t *testing.T, serve Serve) *Upstream {
	t.Helper()
	u := &Upstream{Serve: serve, Arrived: make(chan struct{}, 64), gone: make(chan struct{}, 16), release: make(chan struct{})}
	u.Srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.bodies = append(u.bodies, body)
		serve := u.Serve
		u.mu.Unlock()
		select {
		case u.Arrived <- struct{}{}:
		default:
		}
		serve(u, w, r, body)
	}))
	u.Srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Srv.Start()
	t.Cleanup(u.Close)
	return u
}

// SetServe changes how the Upstream answers the next requests.
func (u *Upstream) SetServe(serve Serve) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Serve = serve
}

// Close ends every stall and stops the server; it may be called twice.
func (u *Upstream) Close() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
	u.Srv.Close()
}

// Stall blocks until the request's context ends (and reports it) or the
// test ends.
func (u *Upstream) Stall(r *http.Request) {
	select {
	case <-r.Context().Done():
		u.gone <- struct{}{}
	case <-u.release:
	}
}

// Requests returns the headers and bodies of the requests so far.
func (u *Upstream) Requests() ([]http.Header, []map[string]any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers), slices.Clone(u.bodies)
}

// WaitGone waits until a stalled request's context ended.
func (u *Upstream) WaitGone(t *testing.T) {
	t.Helper()
	wait(t, u.gone, "the upstream request was not cancelled")
}

// WaitArrived waits until a request reached the upstream.
func (u *Upstream) WaitArrived(t *testing.T) {
	t.Helper()
	wait(t, u.Arrived, "no request reached the upstream")
}

// wait receives from c, failing with failure if nothing comes soon.
func wait(t *testing.T, c chan struct{}, failure string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal(failure)
	}
}

// Client is an HTTP client of its own, so a test can close its connections
// and count goroutines.
func Client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
