package chat

import (
	"context"
	"unicode/utf8"
)

// Tokenizer counts the tokens of a text. The engine asks it for a turn's
// usage when the model reported none, so what it counts is what usage
// records, responseData and billing see. chatgate's server passes a
// *cl100k.Counter (package github.com/chatgate/chatgate/cl100k), which counts
// as OpenAI does; chat itself does not import it, so a program that counts
// otherwise links no BPE tables.
type Tokenizer interface {
	Count(text string) int
}

// ContextTokenizer is a Tokenizer that can stop counting when ctx ends, for
// long texts a client brought and then left: CountContext returns 0 and
// ctx.Err() soon after ctx ends. The engine uses it when the Tokenizer has
// it. *cl100k.Counter has it.
type ContextTokenizer interface {
	Tokenizer
	CountContext(ctx context.Context, text string) (int, error)
}

// TokenizerFunc adapts a function to Tokenizer.
type TokenizerFunc func(text string) int

// Count implements Tokenizer.
func (f TokenizerFunc) Count(text string) int { return f(text) }

// Estimator is the Tokenizer an engine counts with when given none. It
// needs no tables: it estimates one token per four bytes of each run of
// ASCII (rounded up) and one per other character, which is close to
// cl100k_base for English prose and errs high for CJK. Its zero value is
// ready.
type Estimator struct{}

// Count implements Tokenizer.
func (Estimator) Count(text string) int {
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

// CountMessages counts a chat prompt the way OpenAI bills it: each
// message's content plus 3 tokens of framing and 1 for its role, plus 3
// that prime the reply.
// It stops, returning ctx.Err(), soon after ctx ends: between messages,
// and within one when tok is a ContextTokenizer.
func CountMessages(ctx context.Context, tok Tokenizer, msgs []Message) (int, error) {
	ct, _ := tok.(ContextTokenizer)
	n := 3
	for _, m := range msgs {
		var k int
		if ct != nil {
			var err error
			if k, err = ct.CountContext(ctx, m.Content); err != nil {
				return 0, err
			}
		} else {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			k = tok.Count(m.Content)
		}
		n += 3 + k + 1
	}
	return n, nil
}
