// Package tokens is the vocabulary chatgate's domains count tokens with:
// the small Counter interface chat and dataset take, its cancellable
// capability, a func adapter, and an Estimate that needs no tables. It
// imports nothing, as io does for readers, so that chat and dataset agree
// on one interface without importing each other or an encoder.
//
// Exact cl100k_base counts come from package cl100k, whose Counter is a
// ContextCounter; a program that does not import it links no BPE tables.
package tokens

import (
	"context"
	"unicode/utf8"
)

// Counter counts the tokens of a text.
type Counter interface {
	Count(text string) int
}

// ContextCounter is a Counter that can stop counting when ctx ends, for a
// long text a client brought and then left: CountContext returns 0 and
// ctx.Err() soon after ctx ends.
type ContextCounter interface {
	Counter
	CountContext(ctx context.Context, text string) (int, error)
}

// CounterFunc adapts a function to a Counter.
type CounterFunc func(text string) int

// Count calls f.
func (f CounterFunc) Count(text string) int { return f(text) }

// CountContext counts text with c, stopping soon after ctx ends when c is
// a ContextCounter and checking ctx before counting when it is not.
func CountContext(ctx context.Context, c Counter, text string) (int, error) {
	if cc, ok := c.(ContextCounter); ok {
		return cc.CountContext(ctx, text)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return c.Count(text), nil
}

// Estimate is a Counter that needs no tables: one token per four bytes of
// each run of ASCII (rounded up) and one per other character, which is
// close to cl100k_base for English prose and errs high for CJK. Its zero
// value is ready.
type Estimate struct{}

// Count implements Counter.
func (Estimate) Count(text string) int {
	n, ascii := 0, 0
	for _, r := range text {
		if r < utf8.RuneSelf {
			ascii++
			continue
		}
		n += (ascii+3)/4 + 1
		ascii = 0
	}
	return n + (ascii+3)/4
}
