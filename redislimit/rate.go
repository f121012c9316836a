package redislimit

import (
	"context"
	"time"

	"github.com/chatgate/chatgate/limit"
)

// Limiter is a limit.Limiter in Redis: one sliding log of event times per
// key, taken from in one atomic script, so a key limited to N a minute gets
// N in any minute across every replica, and its wait is exact.
type Limiter struct {
	c      *Client
	prefix string
}

// Take implements limit.Limiter. When Redis does not answer, the event is
// let through (Options.RateFailOpen) or refused with limit.ErrUnavailable.
func (l *Limiter) Take(ctx context.Context, key string, r limit.Rate) (time.Duration, error) {
	if r.Unlimited() {
		return 0, nil
	}
	us, err := rateScript.Run(ctx, l.c.rdb, []string{l.prefix + key}, r.N, r.Per.Microseconds(), l.c.nextID()).Int64()
	if err != nil {
		err = l.c.failed(ctx, "rate", err)
		if ctx.Err() != nil {
			return 0, err
		}
		if l.c.opts.OnUnavailable != nil {
			l.c.opts.OnUnavailable("rate", l.c.opts.RateFailOpen)
		}
		if l.c.opts.RateFailOpen {
			return 0, nil
		}
		return 0, err
	}
	l.c.answered()
	return time.Duration(us) * time.Microsecond, nil
}
