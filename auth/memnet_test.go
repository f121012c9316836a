package auth_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
)

// serveInMemory serves h over in-memory connections and returns a client
// for it; any URL with the http scheme reaches h. Tests in a synctest
// bubble use it instead of httptest.Server: a goroutine waiting on a
// loopback socket is not durably blocked, so a bubble with one idle
// connection could never move its clock.
func serveInMemory(t *testing.T, h http.Handler) *http.Client {
	t.Helper()
	l := &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	tr := &http.Transport{DialContext: l.dial}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
	})
	return &http.Client{Transport: tr}
}

// memListener hands the server one end of a net.Pipe per dial.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "memory" }
