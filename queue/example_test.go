package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatgate/chatgate/queue"
)

// A Runner works the jobs its store holds; here a store in memory (see
// memstore_test.go) and a handler that reports each job done.
func Example() {
	ctx := context.Background()
	st := newMemStore()
	done := make(chan string)
	r := queue.Start[job](st, queue.HandlerFunc[job](func(_ context.Context, batch []job) []error {
		for _, j := range batch {
			done <- j.id
		}
		return nil // all done: the store (a queue.Completer) removes them
	}), queue.Options{Name: "greetings"})
	defer r.Close(ctx)

	_ = st.add(ctx, "hello", time.Now())
	r.Wake()
	fmt.Println(<-done)
	// Output: hello
}
