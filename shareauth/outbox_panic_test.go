package shareauth_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatgate/chatgate/shareauth"
)

// hostsTransport stands for the network in a bubble: poison.test panics
// inside the HTTP client, ok.test takes every callback.
type hostsTransport struct {
	mu        sync.Mutex
	delivered []string // bodies ok.test took
}

func (h *hostsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "poison.test" {
		panic("boom: a poisoned callback")
	}
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.delivered = append(h.delivered, string(b))
	h.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"success":true}`)), Header: http.Header{}, Request: r}, nil
}

func (h *hostsTransport) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.delivered) }

// syncBuffer is a log sink the outbox goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type panicCounter struct {
	mu sync.Mutex
	c  []string
}

func (p *panicCounter) on(component string) { p.mu.Lock(); p.c = append(p.c, component); p.mu.Unlock() }
func (p *panicCounter) get() []string       { p.mu.Lock(); defer p.mu.Unlock(); return slices.Clone(p.c) }

// pending returns the outbox's one delivery for shareID.
func pending(t *testing.T, st shareauth.Store, shareID string) *shareauth.Delivery {
	t.Helper()
	out, err := st.Deliveries(context.Background(), shareID)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d deliveries pending for %s, want 1", len(out), shareID)
	}
	return out[0]
}

// A panic while delivering one finish callback is that callback's recorded
// failure, retried with backoff; the other links' callbacks still go out,
// Close works, and a new Service on the same outbox does not crash on it.
func TestFinishPanicIsRecordedAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := shareauth.NewMemoryStore()
		rt := &hostsTransport{}
		logs := &syncBuffer{}
		panics := &panicCounter{}
		opts := shareauth.Options{Store: st, HTTPClient: &http.Client{Transport: rt}, RetryBase: time.Second, RetryMax: time.Minute,
			OnPanic: panics.on, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
		svc := shareauth.New(opts)
		poison, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "poison", Limit: shareauth.Limit{HookURL: "http://poison.test"}})
		if err != nil {
			t.Fatal(err)
		}
		good, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "good", Limit: shareauth.Limit{HookURL: "http://ok.test"}})
		if err != nil {
			t.Fatal(err)
		}
		finish := func(s *shareauth.Service, l *shareauth.Link, token string) {
			if err := s.Finish(ctx, &shareauth.Admission{Link: l, Token: token}, []any{}); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		finish(svc, poison, "p1")
		finish(svc, good, "g1")
		synctest.Wait()

		if rt.count() != 1 {
			t.Fatalf("ok.test took %d callbacks, want 1", rt.count())
		}
		d := pending(t, st, poison.ID)
		if d.Attempts != 1 || !strings.Contains(d.LastError, "boom: a poisoned callback") || !d.NextAttempt.Equal(start.Add(time.Second)) {
			t.Fatalf("after the first panic: attempts %d, last error %q, next %v (want +1s)", d.Attempts, d.LastError, d.NextAttempt.Sub(start))
		}
		if got := panics.get(); !slices.Equal(got, []string{"finish"}) {
			t.Fatalf("OnPanic calls %v", got)
		}
		if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, "boom: a poisoned callback") || !strings.Contains(l, "goroutine") {
			t.Fatalf("no error log with the panic and its stack:\n%s", l)
		}

		// the backoff doubles, and the loop keeps serving the others
		time.Sleep(time.Second)
		synctest.Wait()
		if d := pending(t, st, poison.ID); d.Attempts != 2 || !d.NextAttempt.Equal(start.Add(3*time.Second)) {
			t.Fatalf("second attempt: attempts %d, next %v (want +3s)", d.Attempts, d.NextAttempt.Sub(start))
		}
		finish(svc, good, "g2")
		synctest.Wait()
		if rt.count() != 2 {
			t.Fatalf("ok.test took %d callbacks after the panics, want 2", rt.count())
		}
		if err := svc.Close(ctx); err != nil {
			t.Fatal(err)
		}

		// a restart with the poisoned item queued
		svc2 := shareauth.New(opts)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := pending(t, st, poison.ID); d.Attempts != 3 || !strings.Contains(d.LastError, "boom") {
			t.Fatalf("after the restart: attempts %d, last error %q", d.Attempts, d.LastError)
		}
		finish(svc2, good, "g3")
		synctest.Wait()
		if rt.count() != 3 || len(panics.get()) != 3 {
			t.Fatalf("after the restart: %d delivered, %d panics", rt.count(), len(panics.get()))
		}
		if err := svc2.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// panickyStore panics in Claim once armed, then behaves.
type panickyStore struct {
	*shareauth.MemoryStore
	mu    sync.Mutex
	armed bool
}

func (s *panickyStore) Claim(ctx context.Context, now time.Time, n int, skip func(string) bool) ([]*shareauth.Delivery, error) {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		panic("store: corrupted page")
	}
	return s.MemoryStore.Claim(ctx, now, n, skip)
}

// A panic in the store ends that turn of the outbox loop, not the loop.
func TestFinishLoopSurvivesStorePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := &panickyStore{MemoryStore: shareauth.NewMemoryStore()}
		rt := &hostsTransport{}
		panics := &panicCounter{}
		svc := shareauth.New(shareauth.Options{Store: st, HTTPClient: &http.Client{Transport: rt}, OnPanic: panics.on,
			PollEvery: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer svc.Close(ctx)
		good, _, err := svc.CreateLink(ctx, shareauth.LinkSpec{AppID: "a", Name: "good", Limit: shareauth.Limit{HookURL: "http://ok.test"}})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st.mu.Lock()
		st.armed = true
		st.mu.Unlock()
		if err := svc.Finish(ctx, &shareauth.Admission{Link: good, Token: "g"}, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if rt.count() != 0 || !slices.Equal(panics.get(), []string{"finish"}) {
			t.Fatalf("the panicking turn: %d delivered, panics %v", rt.count(), panics.get())
		}
		time.Sleep(time.Second) // the next poll
		synctest.Wait()
		if rt.count() != 1 {
			t.Fatalf("after the store panic: %d delivered, want 1", rt.count())
		}
	})
}
