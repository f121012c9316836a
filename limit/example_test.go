package limit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatgate/chatgate/limit"
)

// A key limited to 2 requests a minute: the third waits until the first
// leaves the window.
func ExampleLocal() {
	var l limit.Local
	ctx := context.Background()
	for range 3 {
		wait, _ := l.Take(ctx, "key-1", limit.PerMinute(2))
		fmt.Println(wait == 0)
	}
	// Output:
	// true
	// true
	// false
}

// A budget of 2.5 points, with what was spent kept by the caller (the
// ledger, in chatgate): the source is charged first, then the quota.
func ExampleLocalQuota() {
	spent := map[string]float64{}
	q := limit.NewLocalQuota(limit.SourceFunc(func(_ context.Context, account string) (float64, error) {
		return spent[account], nil
	}))
	ctx := context.Background()
	for i := range 4 {
		end, err := q.Reserve(ctx, "app-1", 2.5)
		if errors.Is(err, limit.ErrSpent) {
			fmt.Println("request", i, "refused")
			continue
		}
		spent["app-1"]++ // the work cost a point
		_ = q.Charge(ctx, "app-1", 1)
		end()
		fmt.Println("request", i, "answered")
	}
	// Output:
	// request 0 answered
	// request 1 answered
	// request 2 answered
	// request 3 refused
}
