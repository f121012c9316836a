package redislimit_test

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/redislimit"
)

// Every replica makes its own Client on the one Redis; a key limited to
// 60 a minute then gets 60 across all of them. Quotas are rebuilt from the
// source (here a fixed figure; in chatgate the ledger) when Redis lacks them.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	c := redislimit.New(rdb, redislimit.Options{RateFailOpen: false})
	defer c.Close()
	ctx := context.Background()

	rates := c.Limiter("keys")
	if wait, err := rates.Take(ctx, "key-1", limit.PerMinute(60)); err == nil && wait > 0 {
		fmt.Println("retry after", wait)
	}

	quota := c.Quota("keys", limit.SourceFunc(func(context.Context, string) (float64, error) { return 12, nil }))
	end, err := quota.Reserve(ctx, "key-1", 100)
	if err != nil {
		fmt.Println(err) // limit.ErrSpent, or limit.ErrUnavailable when Redis does not answer
		return
	}
	defer end()
	// ... the work; then charge the ledger, and the quota:
	_ = quota.Charge(ctx, "key-1", 1.5)
}
