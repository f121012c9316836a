package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A batcher sends the rate checks of concurrent requests to Redis in
// pipelines: one write and one read for as many checks as were waiting,
// rather than a round trip each. Under load this is most of what a check
// costs, on both sides of the socket (BENCHMARKS.md).
type batcher struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	reqs    chan *take
	stop    <-chan struct{}
	onPanic func(v any) // a recovered panic, after its checks were answered
}

// take is one rate check waiting for its answer.
type take struct {
	keys []string
	args []any
	done chan struct{}
	res  []any
	err  error
	// handed: a batcher has it, and will run it even if its caller
	// leaves. Only the caller reads it.
	handed bool
}

// maxBatch bounds the checks of one pipeline.
const maxBatch = 128

// batchWorkers is how many pipelines may be in flight at once: while one
// waits for Redis, the next fills.
const batchWorkers = 2

func (b *batcher) run() {
	batch := make([]*take, 0, maxBatch)
	for {
		select {
		case <-b.stop:
			return
		case t := <-b.reqs:
			batch = append(batch[:0], t)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case t := <-b.reqs:
				batch = append(batch, t)
			default:
				break fill
			}
		}
		b.send(batch)
	}
}

// send runs batch in one pipeline and hands each check its answer. A Redis
// that lost its scripts answers NOSCRIPT: the script is loaded and the
// batch sent once more.
func (b *batcher) send(batch []*take) {
	answered := 0
	defer func() {
		if v := recover(); v != nil {
			for _, t := range batch[answered:] {
				t.err = fmt.Errorf("redislimit: rate check panicked: %v", v)
				close(t.done)
			}
			b.onPanic(v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	for try := 0; ; try++ {
		pipe := b.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, t := range batch {
			cmds[i] = rateScript.EvalSha(ctx, pipe, t.keys, t.args...)
		}
		_, err := pipe.Exec(ctx)
		if try == 0 && err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if rateScript.Load(ctx, b.rdb).Err() == nil {
				continue
			}
		}
		for i, t := range batch {
			t.res, t.err = cmds[i].Slice()
			close(t.done)
			answered++
		}
		return
	}
}

// do sends one check through the batcher and waits for its answer, or
// for ctx. It reports false when the batcher is stopped.
func (b *batcher) do(ctx context.Context, t *take) ([]any, bool, error) {
	t.done = make(chan struct{})
	select {
	case b.reqs <- t:
	case <-b.stop:
		return nil, false, nil
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
	t.handed = true
	select {
	case <-t.done:
		return t.res, true, t.err
	case <-ctx.Done():
		return nil, true, ctx.Err() // t is still the batcher's
	}
}
