package dataset

import (
	"context"

	"github.com/chatgate/chatgate/tokens"
)

// count returns the tokens of texts, or ctx.Err() once ctx has ended: a
// request's text is counted for as long as the request lasts, no longer.
func (s *Service) count(ctx context.Context, texts ...string) (int, error) {
	n := 0
	for _, t := range texts {
		k, err := tokens.CountContext(ctx, s.tokens, t)
		if err != nil {
			return 0, err
		}
		n += k
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
