package chattest

import (
	"context"
	"errors"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// TestShared checks two stores on the same data, as two processes of one
// deployment (or two BoltStores on one file) hold them: what one writes,
// the other reads at once, whatever it read and kept before. open returns
// the two stores, new and empty, with any cleanup registered with t. A
// store that may read stale apps by design (chat/pgstore while its Watch
// runs) is not for this suite.
func TestShared(t *testing.T, open func(t *testing.T) (reader, writer Store)) {
	ctx := context.Background()
	reader, writer := open(t)
	if reader == nil || writer == nil {
		t.Fatal("open returned a nil store")
	}
	app := &chat.App{ID: "a", TeamID: "t", Name: "one", Model: "m", DatasetIDs: []string{"d1"}}
	name := func(when string) string {
		t.Helper()
		a, err := reader.App(ctx, "t", "a")
		if errors.Is(err, chat.ErrAppNotFound) {
			return ""
		}
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return a.Name
	}
	if err := writer.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read may come from what the first kept
		if got := name("reading the other store's app"); got != "one" {
			t.Fatalf("the other store's app reads as %q, want one", got)
		}
	}
	app.Name = "two"
	if err := writer.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if got := name("after the other store's write"); got != "two" {
		t.Fatalf("after the other store's write the app reads as %q, want two", got)
	}
	if err := writer.DeleteApp(ctx, "t", "a"); err != nil {
		t.Fatal(err)
	}
	if got := name("after the other store's delete"); got != "" {
		t.Fatalf("after the other store's delete the app reads as %q, want it gone", got)
	}
}
