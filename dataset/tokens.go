package dataset

import "context"

// Tokenizer counts the tokens of a text, for the limits of pushed items
// and for usage. The default, cl100k.Counter, counts as OpenAI's models
// do, offline.
type Tokenizer interface {
	Count(text string) int
}

// ContextTokenizer is a Tokenizer that can stop counting when the request
// whose text it counts ends, as cl100k.Counter can: a long text is then
// counted for as long as its request lasts, no longer. The Service uses
// CountContext when Options.Tokens has it.
type ContextTokenizer interface {
	Tokenizer
	CountContext(ctx context.Context, text string) (int, error)
}

// TokenizerFunc adapts a function to a Tokenizer.
type TokenizerFunc func(text string) int

// Count calls f.
func (f TokenizerFunc) Count(text string) int { return f(text) }

// count returns the tokens of texts, or ctx.Err() once ctx has ended: a
// request's text is counted for as long as the request lasts, no longer.
func (s *Service) count(ctx context.Context, texts ...string) (int, error) {
	n := 0
	for _, t := range texts {
		if cc, ok := s.tokens.(ContextTokenizer); ok {
			k, err := cc.CountContext(ctx, t)
			if err != nil {
				return 0, err
			}
			n += k
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n += s.tokens.Count(t)
	}
	return n, nil
}

// splitCount is SplitText's length function for a request's text: it
// counts with ctx, and once ctx has ended it counts nothing (so the
// splitter finishes at once) and err reports why.
func (s *Service) splitCount(ctx context.Context) (count func(string) int, err func() error) {
	var failed error
	return func(text string) int {
			if failed != nil {
				return 0
			}
			n, err := s.count(ctx, text)
			if err != nil {
				failed = err
			}
			return n
		}, func() error {
			return failed
		}
}
