package redislimit_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/redislimit"
)

// A Redis that restarts without persistence loses every window. The
// replicas tell the new one what they know, the events of a replica that
// died before the restart included, so that no key gets a fresh window.
func TestRedisRestartKeepsRateWindows(t *testing.T) {
	srv := redistest.StartServer(t)
	r := limit.PerMinute(30)
	var cs []*redislimit.Client
	for range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		// the grace outlasts go-redis's pause of a second between dials
		c := redislimit.New(rdb, redislimit.Options{Grace: 1200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	ctx := context.Background()
	admitted := 0
	for i := 0; admitted < r.N; i++ {
		w, err := cs[i%3].Limiter("keys").Take(ctx, "k", r)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 {
			admitted++
		}
		if i > 10*r.N {
			t.Fatalf("%d admitted of %d after %d takes", admitted, r.N, i)
		}
	}
	// replica 0 dies, holding a third of the window; the others' next
	// renewal (every Grace/3) reads the window back
	cs[0].Close()
	time.Sleep(900 * time.Millisecond)

	srv.Stop()
	srv.Start()
	for i := range 20 {
		var w time.Duration
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; {
			w, err = cs[1+i%2].Limiter("keys").Take(ctx, "k", r)
			if !errors.Is(err, limit.ErrUnavailable) || time.Now().After(deadline) {
				break // go-redis dials again at most once a second
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("take %d after the restart: %v", i, err)
		}
		if w < 40*time.Second {
			t.Fatalf("take %d after the restart: wait %v; the window of %d, full before the restart, is not known to the new Redis", i, w, r.N)
		}
	}
}

// Every caller of a hot key on a Redis that does not answer waits for one
// check: not one each in turn, which would cost a timeout per caller.
func TestHungRedisCostsOneTimeoutPerKey(t *testing.T) {
	h := startHungRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: h.addr, DisableIdentity: true, MaxRetries: -1, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	var unchecked atomic.Int64
	// a grace of a minute: no renewal runs during the test
	c := redislimit.New(rdb, redislimit.Options{Grace: time.Minute, Logger: slog.New(slog.DiscardHandler),
		OnUnavailable: func(string, bool) { unchecked.Add(1) }})
	t.Cleanup(func() { c.Close() })
	l := c.Limiter("keys")
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			<-start
			_, err := l.Take(context.Background(), "hot", limit.PerMinute(100))
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, limit.ErrUnavailable) {
			t.Fatalf("a take on a hung Redis: %v, want ErrUnavailable", err)
		}
	}
	if n := unchecked.Load(); n != 20 {
		t.Fatalf("OnUnavailable called %d times for 20 unchecked takes", n)
	}
	if n := h.evals.Load(); n > 2 {
		t.Fatalf("20 concurrent takes of one key sent %d checks to a hung Redis, one after another", n)
	}
}

// A caller that leaves while its check runs gives back what it was
// granted: nobody else would use it.
func TestCancelledTakeGivesItsSlotsBack(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	slow := &slowPipelines{}
	rdb.AddHook(slow)
	a := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { a.Close() })
	b := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	const n = 1000
	r := limit.PerMinute(n)
	if _, err := a.Limiter("keys").Take(context.Background(), "warm", r); err != nil {
		t.Fatal(err) // past the grace of the new epoch
	}

	slow.delay.Store(int64(300 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := a.Limiter("keys").Take(ctx, "k", r)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a take whose caller left: %v", err)
	}
	for deadline := time.Now().Add(3 * time.Second); slow.ran.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the check of the caller that left never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow.delay.Store(0)
	key := prefix + "rate:keys:k"
	for deadline := time.Now().Add(3 * time.Second); ; {
		m, err := rdb.ZCard(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if m == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window still holds %d events of a caller that left", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := takeUntilRefused(t, b.Limiter("keys"), "k", r); got != n {
		t.Fatalf("after a caller left mid-check, another replica got %d of %d", got, n)
	}
}

// A take that panics (here in a hook of the Redis client) does not leave
// its key waiting on a fetch that will never end.
func TestPanickedTakeFreesItsKey(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	p := &panicOnce{}
	rdb.AddHook(p)
	c := redislimit.New(rdb, redislimit.Options{Prefix: prefix, Grace: 50 * time.Millisecond})
	l := c.Limiter("keys")
	r := limit.PerMinute(10)
	if _, err := l.Take(context.Background(), "warm", r); err != nil {
		t.Fatal(err)
	}
	c.Close() // takes then run their scripts themselves, through the hook
	p.armed.Store(true)
	func() {
		defer func() {
			if v := recover(); v == nil {
				t.Fatal("the hook did not panic")
			}
		}()
		l.Take(context.Background(), "k", r)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if w, err := l.Take(ctx, "k", r); err != nil || w != 0 {
		t.Fatalf("a take after one that panicked: %v, %v", w, err)
	}
}

// hungRedis speaks enough of Redis for go-redis to connect, then never
// answers a command; it counts the scripts it was sent.
type hungRedis struct {
	addr  string
	evals atomic.Int64
}

func startHungRedis(t *testing.T) *hungRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungRedis{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer cn.Close()
				h.serve(cn)
			})
		}
	}()
	return h
}

func (h *hungRedis) serve(cn net.Conn) {
	rd := bufio.NewReader(cn)
	for {
		args, err := readCommand(rd)
		if err != nil {
			return
		}
		switch strings.ToUpper(args[0]) {
		case "HELLO": // an old Redis, to go-redis: it goes on in RESP2
			io.WriteString(cn, "-ERR unknown command 'HELLO'\r\n")
		case "EVALSHA", "EVAL":
			h.evals.Add(1)
		}
	}
}

func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || n < 1 {
		return nil, errors.New("not a command")
	}
	args := make([]string, n)
	for i := range args {
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// slowPipelines holds every pipeline back by delay before it is sent, and
// counts those it held that then ran.
type slowPipelines struct {
	delay atomic.Int64
	ran   atomic.Int64
}

func (s *slowPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (s *slowPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (s *slowPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		d := time.Duration(s.delay.Load())
		if d == 0 {
			return next(ctx, cmds)
		}
		time.Sleep(d)
		err := next(ctx, cmds)
		s.ran.Add(1)
		return err
	}
}

// panicOnce panics in the first command it sees once armed.
type panicOnce struct{ armed atomic.Bool }

func (p *panicOnce) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *panicOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if p.armed.CompareAndSwap(true, false) {
			panic("a hook panicked")
		}
		return next(ctx, cmd)
	}
}
func (p *panicOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
