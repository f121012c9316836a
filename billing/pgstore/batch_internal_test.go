package pgstore

import (
	"context"
	"testing"
	"testing/synctest"
)

// A batch's statement runs while any of its callers waits: one caller
// giving up does not cut it short for the others, and it ends once all
// have.
func TestWhileAwaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			ctxs    [3]context.Context
			cancels [3]context.CancelFunc
			batch   []*pending
		)
		for i := range ctxs {
			ctxs[i], cancels[i] = context.WithCancel(context.Background())
			batch = append(batch, &pending{ctx: ctxs[i]})
		}
		ctx, stop := whileAwaited(batch)
		defer stop()
		for i := range 2 {
			cancels[i]()
			synctest.Wait()
			if err := ctx.Err(); err != nil {
				t.Fatalf("the batch's context ended with %d of 3 callers gone: %v", i+1, err)
			}
		}
		cancels[2]()
		synctest.Wait()
		if ctx.Err() == nil {
			t.Fatal("the batch's context goes on with every caller gone")
		}
	})
}
