package pgstore

import (
	"testing"
	"time"
)

// A read that began before a change was heard may hold the row as it was
// before the change: it must not be kept, or it would outlive the change.
func TestWatchedReadOlderThanAChangeIsNotKept(t *testing.T) {
	var w watched
	now := time.Now()
	w.listen(true)
	gen := w.generation()
	w.forget(appKey("t", "a")) // heard while the read ran
	w.put(appKey("t", "a"), []byte(`{"name":"old"}`), gen, now)
	if _, ok := w.get(appKey("t", "a"), now); ok {
		t.Fatal("a read older than a change was kept")
	}
	gen = w.generation()
	w.put(appKey("t", "a"), []byte(`{"name":"new"}`), gen, now)
	if raw, ok := w.get(appKey("t", "a"), now); !ok || string(raw) != `{"name":"new"}` {
		t.Fatalf("a read after the change: %s, %v; want it kept", raw, ok)
	}
	w.listen(false)
	if _, ok := w.get(appKey("t", "a"), now); ok {
		t.Fatal("an app was used after the watch lost its connection")
	}
	w.put(appKey("t", "a"), []byte(`{"name":"new"}`), w.generation(), now)
	if _, ok := w.get(appKey("t", "a"), now); ok {
		t.Fatal("an app was kept with no watch listening")
	}
}
