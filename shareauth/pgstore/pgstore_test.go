package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/apierror"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/shareauth"
	"github.com/chatgate/chatgate/shareauth/pgstore"
	"github.com/chatgate/chatgate/shareauth/shareauthtest"
)

var ctx = context.Background()

// open is a store on a fresh schema, dropped when t ends.
func open(t testing.TB, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.NewWithOptions(ctx, pgtest.Pool(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replicas are n stores, each on its own pool, sharing one fresh schema
// as replicas share a database.
func replicas(t testing.TB, n int) ([]*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	dsn := pgtest.DSN(t)
	stores := make([]*pgstore.Store, n)
	pools := make([]*pgxpool.Pool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		pools[i] = pool
		wg.Go(func() { stores[i], errs[i] = pgstore.New(ctx, pool) }) // started together, as replicas are
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return stores, pools[0]
}

// The store as replicas share it: what Claim returns is kept from every
// other Claim.
func TestSharedStore(t *testing.T) {
	shareauthtest.TestSharedStore(t, func(t *testing.T) shareauth.Store { return open(t, pgstore.Options{}) })
}

// The store with a lease that runs out before the next statement keeps
// nothing from later claims, as a store one process holds (BoltStore),
// whose Runner keeps its own claims apart: what TestStore checks, a
// claimed callback claimed again included.
func TestStore(t *testing.T) {
	shareauthtest.TestStore(t, func(t *testing.T) shareauth.Store { return open(t, pgstore.Options{Lease: time.Microsecond}) })
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Charges made at once on several replicas all add up, and the last use
// is the latest of them whatever order they commit in.
func TestAddUsageConcurrentReplicas(t *testing.T) {
	stores, _ := replicas(t, 4)
	if err := stores[0].PutLink(ctx, &shareauth.Link{ID: "l1", TeamID: "team", AppID: "app", Secret: "cgs_x", CreateTime: t0}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25 // per replica
	var wg sync.WaitGroup
	for r, s := range stores {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					// every writer's uses go back and forth in time
					at := t0.Add(time.Duration((r*writers+w)*each+(i*7)%each) * time.Millisecond)
					if err := s.AddUsage(ctx, "l1", 0.25, at); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	l, err := stores[3].Link(ctx, "l1")
	if err != nil {
		t.Fatal(err)
	}
	n := len(stores) * writers * each
	if want := 0.25 * float64(n); l.UsagePoints != want {
		t.Errorf("usage points %v after %d charges of 0.25, want %v", l.UsagePoints, n, want)
	}
	if want := t0.Add(time.Duration(n-1) * time.Millisecond); !l.LastUsedTime.Equal(want) {
		t.Errorf("last use %v, want the latest, %v", l.LastUsedTime, want)
	}
}

// Replicas claiming at once each get callbacks no other gets; a replica
// killed with callbacks claimed leaves them to another once their lease
// runs out.
func TestClaimAcrossReplicas(t *testing.T) {
	stores, pool := replicas(t, 3)
	if err := stores[0].PutLink(ctx, &shareauth.Link{ID: "l1", TeamID: "team", AppID: "app", Secret: "cgs_x", CreateTime: t0}); err != nil {
		t.Fatal(err)
	}
	const n = 150
	for i := range n {
		d := &shareauth.Delivery{ID: fmt.Sprintf("d%03d", i), ShareID: "l1", Path: "/shareAuth/finish", Body: []byte("{}"),
			NextAttempt: t0, CreateTime: t0}
		if err := stores[i%3].Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for _, s := range stores[1:] {
		for range 4 {
			wg.Go(func() {
				for {
					ds, err := s.Claim(ctx, t0, 4, func(string) bool { return false })
					if err != nil || len(ds) == 0 {
						if err != nil {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					for _, d := range ds {
						seen[d.ID]++
					}
					mu.Unlock()
					if err := s.Complete(ctx, []string{ds[0].ID}); err != nil { // the rest: its replica dies
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var twice []string
	for id, k := range seen {
		if k > 1 {
			twice = append(twice, id)
		}
	}
	if len(seen) != n || len(twice) > 0 {
		t.Fatalf("%d of %d callbacks claimed; claimed more than once: %v", len(seen), n, twice)
	}
	left, err := stores[0].Pending(ctx, "l1")
	if err != nil || left == 0 {
		t.Fatalf("pending after the replicas died: %d, %v", left, err)
	}
	if ds, err := stores[0].Claim(ctx, t0.Add(time.Hour), n, func(string) bool { return false }); err != nil || len(ds) != 0 {
		t.Fatalf("claimed under a live lease: %d callbacks, %v", len(ds), err)
	}
	// the lease runs out
	if _, err := pool.Exec(ctx, `UPDATE shareauth_deliveries SET lease_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	ds, err := stores[0].Claim(ctx, t0.Add(time.Hour), n, func(string) bool { return false })
	if err != nil || len(ds) != left {
		t.Fatalf("after the lease: %d callbacks claimed, %v; want the %d left", len(ds), err, left)
	}
}

// A callback skip leaves out is not leased: another Claim gets it at once.
func TestClaimSkipLeavesNoLease(t *testing.T) {
	stores, _ := replicas(t, 2)
	for _, id := range []string{"a", "b", "c"} {
		if err := stores[0].Enqueue(ctx, &shareauth.Delivery{ID: id, ShareID: "l1", NextAttempt: t0, CreateTime: t0}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := stores[0].Claim(ctx, t0, 2, func(id string) bool { return id == "a" })
	if err != nil || len(ds) != 2 || ds[0].ID != "b" || ds[1].ID != "c" {
		t.Fatalf("Claim skipping a: %v %v, want [b c]", ds, err)
	}
	if ds, err := stores[1].Claim(ctx, t0, 10, func(string) bool { return false }); err != nil || len(ds) != 1 || ds[0].ID != "a" {
		t.Fatalf("the other replica's Claim: %v %v, want [a]", ds, err)
	}
}

// The zero times of a callback come back zero; a callback due at the
// zero time is due.
func TestZeroTimes(t *testing.T) {
	s := open(t, pgstore.Options{})
	if err := s.Enqueue(ctx, &shareauth.Delivery{ID: "z", ShareID: "l1"}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Claim(ctx, t0, 1, func(string) bool { return false })
	if err != nil || len(ds) != 1 || !ds[0].NextAttempt.IsZero() || !ds[0].CreateTime.IsZero() || ds[0].Body == nil {
		t.Fatalf("Claim: %+v %v", ds, err)
	}
}

// When Postgres goes away, calls fail in bounded time as
// storage_unavailable, and work again once it is back.
func TestUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pgstore.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutLink(ctx, &shareauth.Link{ID: "l1", TeamID: "team", Secret: "cgs_x", CreateTime: t0}); err != nil {
		t.Fatal(err)
	}
	p.down()
	start := time.Now()
	for _, call := range []func() error{
		func() error { _, err := s.Link(ctx, "l1"); return err },
		func() error { return s.AddUsage(ctx, "l1", 1, t0) },
		func() error { _, err := s.Claim(ctx, t0, 1, func(string) bool { return false }); return err },
	} {
		if err := call(); !errors.Is(err, apierror.ErrStorageUnavailable) {
			t.Errorf("with Postgres gone: %v, want storage_unavailable", err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the failing calls took %v", d)
	}
	p.up()
	if _, err := s.Link(ctx, "l1"); err != nil {
		t.Fatalf("once Postgres is back: %v", err)
	}
}

// proxy forwards TCP to a Postgres and can be cut, as a Postgres that
// stops would be, without stopping the shared test server.
type proxy struct {
	t      testing.TB
	target string
	mu     sync.Mutex
	ln     net.Listener
	port   string
	conns  []net.Conn
}

func startProxy(t testing.TB, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.down)
	return p
}

func (p *proxy) addr() string { return "127.0.0.1:" + p.port }

func (p *proxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	_, p.port, _ = net.SplitHostPort(ln.Addr().String())
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// down closes the listener and every connection through it.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// up listens again on the same port.
func (p *proxy) up() { p.listen(p.addr()) }

// The Example, which has no Output to be run by go test, runs here on a
// schema of its own.
func TestExample(t *testing.T) {
	t.Setenv(pgtest.Env, pgtest.DSN(t))
	Example()
}
