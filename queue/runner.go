package queue

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/chatgate/chatgate/internal/panics"
)

// Options tune a Runner. The zero value works: one worker, one job at a
// time, retried forever with a backoff from 1 s to 10 min.
type Options struct {
	// Name names the queue in logs, and is the component OnPanic hears for
	// a panic in the handler; "queue" when empty.
	Name string
	// StoreComponent is what OnPanic hears for a panic in the store; Name
	// when empty.
	StoreComponent string
	Workers        int // batches worked at once; default 1
	BatchSize      int // jobs claimed for one batch; default 1
	// MaxAttempts fails a job after that many attempts; 0 retries forever.
	MaxAttempts int
	RetryBase   time.Duration // first retry delay, doubled at each attempt; default 1 s
	RetryMax    time.Duration // longest retry delay; default 10 min
	PollEvery   time.Duration // how often the store is asked without a Wake; default 1 s
	Logger      *slog.Logger  // default slog.Default()
	// OnPanic, when set, is called after a panic was recovered and logged
	// (a metrics hook).
	OnPanic func(component string)
}

// Runner works a queue in the background until Close. Its methods are safe
// for concurrent use.
type Runner[J Job] struct {
	store Store[J]
	h     Handler[J]
	opts  Options
	log   *slog.Logger

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	inflight map[string]bool
}

// Start starts a Runner working store's jobs with h.
func Start[J Job](store Store[J], h Handler[J], opts Options) *Runner[J] {
	opts.Name = cmp.Or(opts.Name, "queue")
	opts.StoreComponent = cmp.Or(opts.StoreComponent, opts.Name)
	opts.Workers = max(opts.Workers, 1)
	opts.BatchSize = max(opts.BatchSize, 1)
	opts.RetryBase = cmp.Or(max(opts.RetryBase, 0), time.Second)
	opts.RetryMax = cmp.Or(max(opts.RetryMax, 0), 10*time.Minute)
	opts.PollEvery = cmp.Or(max(opts.PollEvery, 0), time.Second)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner[J]{store: store, h: h, opts: opts, log: log, wake: make(chan struct{}, 1), cancel: cancel,
		inflight: map[string]bool{}}
	work := make(chan []J)
	for range opts.Workers {
		r.wg.Go(func() {
			for batch := range work {
				r.workSafely(ctx, batch)
				r.mu.Lock()
				for _, j := range batch {
					delete(r.inflight, j.JobID())
				}
				r.mu.Unlock()
			}
		})
	}
	r.wg.Go(func() {
		defer close(work)
		r.dispatch(ctx, work)
	})
	return r
}

// Wake asks the store for due jobs now rather than at the next poll: call
// it after queueing a job.
func (r *Runner[J]) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops claiming, cancels the batches in flight and waits for them,
// or for ctx. A job interrupted so is not counted as an attempt: it stays
// due, for the next Runner.
func (r *Runner[J]) Close(ctx context.Context) error {
	r.once.Do(r.cancel)
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner[J]) dispatch(ctx context.Context, work chan<- []J) {
	skip := func(id string) bool { return r.inflight[id] }
	for ctx.Err() == nil {
		r.mu.Lock()
		var due []J
		err := panics.Catch(func() (err error) {
			due, err = r.store.Claim(ctx, time.Now(), r.opts.BatchSize, skip)
			return err
		})
		for _, j := range due {
			r.inflight[j.JobID()] = true
		}
		r.mu.Unlock()
		if err != nil {
			due = nil
			if errors.As(err, new(*panics.Error)) {
				r.panicked(r.opts.StoreComponent, err, "the queue's store panicked; the runner carries on")
			} else if ctx.Err() == nil {
				r.log.Error("queue: claiming jobs", "queue", r.opts.Name, "err", err)
			}
		}
		if len(due) > 0 {
			select {
			case work <- due:
				continue
			case <-ctx.Done():
				return
			}
		}
		t := time.NewTimer(r.opts.PollEvery)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// workSafely works a batch and records its outcomes. A panic in the
// handler fails an attempt of every job of the batch, so that no job can
// take the process down, nor, replayed after a restart, do it again.
func (r *Runner[J]) workSafely(ctx context.Context, batch []J) {
	var errs []error
	if err := panics.Catch(func() error { errs = r.h.Work(ctx, batch); return nil }); err != nil {
		r.panicked(r.opts.Name, err, "a batch of the queue panicked; its jobs will be tried again")
		errs = make([]error, len(batch))
		for i := range errs {
			errs[i] = err
		}
	}
	var done, interrupted []string
	for i, j := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		if err == nil {
			done = append(done, j.JobID())
			continue
		}
		isPanic := errors.As(err, new(*panics.Error))
		if ctx.Err() != nil && !isPanic {
			interrupted = append(interrupted, j.JobID()) // shutting down: the attempt did not happen
			continue
		}
		if perr := panics.Catch(func() error { return r.reschedule(ctx, j, err) }); perr != nil {
			r.panicked(r.opts.StoreComponent, perr, "the queue's store panicked rescheduling a job; it stays as it was")
		}
	}
	if rl, ok := r.store.(Releaser); ok && len(interrupted) > 0 {
		r.settle(ctx, "releasing", "they wait for their lease to end", interrupted, rl.Release)
	}
	if c, ok := r.store.(Completer); ok && len(done) > 0 {
		r.settle(ctx, "completing", "they will run again", done, c.Complete)
	}
}

// settle hands ids to the store's Release or Complete, which must happen
// even as the runner stops, and logs what it could not do.
func (r *Runner[J]) settle(ctx context.Context, doing, then string, ids []string, fn func(context.Context, []string) error) {
	err := panics.Catch(func() error { return fn(context.WithoutCancel(ctx), ids) })
	if errors.As(err, new(*panics.Error)) {
		r.panicked(r.opts.StoreComponent, err, "the queue's store panicked "+doing+" jobs")
	} else if err != nil {
		r.log.Error("queue: "+doing+" jobs; "+then, "queue", r.opts.Name, "jobs", len(ids), "err", err)
	}
}

// reschedule records a failed attempt of j: retried after a backoff, or
// failed for good when err is permanent or the attempts are spent.
func (r *Runner[J]) reschedule(ctx context.Context, j J, err error) error {
	a := Attempt{Attempts: j.JobAttempts() + 1, Err: err.Error()}
	if IsPermanent(err) || (r.opts.MaxAttempts > 0 && a.Attempts >= r.opts.MaxAttempts) {
		a.Failed = true
		r.log.Warn("queue: a job failed for good", "queue", r.opts.Name, "job", j.JobID(), "attempts", a.Attempts, "err", err)
	} else {
		delay := Backoff(a.Attempts, r.opts.RetryBase, r.opts.RetryMax)
		a.Next = time.Now().Add(delay).UTC()
		r.log.Warn("queue: a job failed; it will be tried again", "queue", r.opts.Name, "job", j.JobID(),
			"attempts", a.Attempts, "retry_in", delay, "err", err)
	}
	if err := r.store.Reschedule(context.WithoutCancel(ctx), j.JobID(), a); err != nil && !errors.Is(err, ErrGone) {
		r.log.Error("queue: rescheduling a job", "queue", r.opts.Name, "job", j.JobID(), "err", err)
	}
	return nil
}

// Backoff is the delay after the attempts-th failed attempt: base, doubled
// at each attempt after the first, and never more than limit.
func Backoff(attempts int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d > 0 && d < limit; i++ {
		d *= 2 // no shift: a long base would overflow it into a short delay
	}
	if d > limit || d <= 0 {
		return limit
	}
	return d
}

// panicked logs a recovered panic with its stack and reports it.
func (r *Runner[J]) panicked(component string, err error, msg string) {
	args := []any{"queue", r.opts.Name, "err", err}
	var pe *panics.Error
	if errors.As(err, &pe) {
		args = append(args, "stack", string(pe.Stack))
	}
	r.log.Error("queue: "+msg, args...)
	if r.opts.OnPanic != nil {
		r.opts.OnPanic(component)
	}
}
