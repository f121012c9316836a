package pgstore_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// outage dials Postgres until it is down, then refuses, as a server
// that has stopped does.
type outage struct {
	down atomic.Bool
	dial pgconn.DialFunc
}

func (o *outage) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.down.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	return o.dial(ctx, network, addr)
}

// When Postgres cannot be reached, every call fails in bounded time as
// storage_unavailable, and works again once it can.
func TestUnavailable(t *testing.T) {
	cfg := config(t, pgtest.DSN(t))
	o := &outage{dial: cfg.ConnConfig.DialFunc}
	cfg.ConnConfig.DialFunc = o.DialContext
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool := newPool(t, cfg)
	s := newStore(t, pool)
	k := key("k")
	if err := s.Create(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	o.down.Store(true)
	pool.Reset() // the connections the pool holds go, as with a Postgres that stops
	start := time.Now()
	calls := map[string]func() error{
		"Create":      func() error { return s.Create(ctx, key("k2"), nil) },
		"Update":      func() error { return s.Update(ctx, k, nil) },
		"Delete":      func() error { return s.Delete(ctx, "k", nil) },
		"Get":         func() error { _, err := s.Get(ctx, "k"); return err },
		"GetByHash":   func() error { _, err := s.GetByHash(ctx, k.Hash); return err },
		"List":        func() error { _, err := s.List(ctx, auth.Filter{}); return err },
		"AddUsage":    func() error { return s.AddUsage(ctx, []auth.Usage{{KeyID: "k", Points: 1}}) },
		"AppendAudit": func() error { return s.AppendAudit(ctx, []auth.AuditEvent{{Time: t0}}) },
		"Audit":       func() error { _, err := s.Audit(ctx, auth.AuditQuery{}); return err },
		"TrimAudit":   func() error { _, err := s.TrimAudit(ctx, t0, 1); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, apierror.ErrStorageUnavailable) {
			t.Errorf("%s with Postgres gone: %v, want storage_unavailable", name, err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the failing calls took %v", d)
	}
	o.down.Store(false)
	if _, err := s.GetByHash(ctx, k.Hash); err != nil {
		t.Fatalf("once Postgres is back: %v", err)
	}
}
