// Package queue runs durable work queues: a Runner claims due jobs from a
// Store, hands them in batches to a Handler, and records each outcome:
// done, tried again after a backoff, or failed for good and kept where it
// can be seen. chatgate's training queue, its finish-callback outbox and
// its training-usage outbox all run on it.
//
// The Store is the queue's durable half and belongs to the domain that
// owns the jobs: a domain queue lives in the same database, often the same
// transaction, as what its jobs produce (a trained item's data and its
// removal from the queue commit together). A store needs three verbs,
// Claim, Reschedule and, as a capability, Complete; queuetest checks any
// implementation against them.
//
// A Runner never lets a job take the process down: a panic in the handler
// counts as a failed attempt of every job of its batch, one in the store
// as a failed turn, and both are logged with their stack and reported to
// Options.OnPanic. A job that panics again after a restart only spends
// another attempt.
package queue

import (
	"context"
	"errors"
	"time"
)

// Job is one queued unit of work, as its store returns it.
type Job interface {
	// JobID is the job's id in its store.
	JobID() string
	// JobAttempts is how many attempts were made before this one.
	JobAttempts() int
}

// Store is the durable side of a queue of jobs J.
type Store[J Job] interface {
	// Claim returns up to n jobs, earliest first, that are not failed and
	// whose next attempt is not after now, leaving out those skip reports
	// (the ones this process is working). A store that several processes
	// share must also keep the jobs it returns from the others until they
	// are rescheduled or completed, or a lease it documents runs out.
	Claim(ctx context.Context, now time.Time, n int, skip func(id string) bool) ([]J, error)
	// Reschedule records a failed attempt of job id. It returns ErrGone
	// when the job is no longer queued.
	Reschedule(ctx context.Context, id string, a Attempt) error
}

// Completer is a Store that removes done jobs itself. Without it, a
// Handler that reports a job done must already have removed it, usually
// in the transaction that stored the job's result.
type Completer interface {
	// Complete removes the jobs; ids no longer queued are ignored.
	Complete(ctx context.Context, ids []string) error
}

// Releaser is a Store whose claims hold jobs from other processes (a
// lease) and that can give them back early. A Runner that stops mid-batch
// releases the jobs it did not finish, so that another process takes them
// at once rather than when the lease runs out.
type Releaser interface {
	// Release ends the claims on the jobs; ids not claimed are ignored.
	Release(ctx context.Context, ids []string) error
}

// Attempt is what a failed attempt leaves on its job.
type Attempt struct {
	Attempts int       // attempts made, this one included
	Next     time.Time // when to try again; zero when Failed
	Failed   bool      // never tried again, but kept so the failure is seen
	Err      string    // why the attempt failed
}

// Handler works batches of jobs.
type Handler[J Job] interface {
	// Work attempts every job of batch and returns one error per job, in
	// order: nil when the job is done, an error made by Permanent when
	// trying again cannot help, and any other error to try again after a
	// backoff. A nil or short slice counts as nil for the jobs it misses.
	Work(ctx context.Context, batch []J) []error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc[J Job] func(ctx context.Context, batch []J) []error

// Work calls f.
func (f HandlerFunc[J]) Work(ctx context.Context, batch []J) []error { return f(ctx, batch) }

// ErrGone is what Reschedule returns for a job that is no longer queued:
// deleted meanwhile, with its collection or link, say. The Runner ignores it.
var ErrGone = errors.New("queue: job no longer queued")

// Permanent marks err as a failure that trying again cannot mend: the job
// fails at once, whatever attempts it has left.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, came from Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
