package chat

import (
	"context"

	"github.com/chatgate/chatgate/cl100k"
)

// TokenCounter counts tokens with cl100k_base, loaded from the encoder
// embedded in tiktoken-go-loader: nothing is downloaded, ever. The encoder
// is built on first use (it takes a moment); call Warm to build it early.
// Counting takes time linear in the text, whatever it holds. Its zero
// value is ready.
type TokenCounter struct {
	c cl100k.Counter
}

// Warm builds the encoder now and reports whether it could be built.
func (c *TokenCounter) Warm() error { return c.c.Warm() }

// Count returns the tokens of text. Special-token text is counted as plain
// text, since it came from users.
func (c *TokenCounter) Count(text string) int { return c.c.Count(text) }

// CountContext is Count for text a request brought: it returns 0 and
// ctx.Err() soon after ctx ends, so that the work stops when the client
// leaves.
func (c *TokenCounter) CountContext(ctx context.Context, text string) (int, error) {
	return c.c.CountContext(ctx, text)
}

// CountMessages counts a chat prompt the way OpenAI bills it: each message's
// content plus 3 tokens of framing, plus 3 that prime the reply.
func (c *TokenCounter) CountMessages(msgs []Message) int {
	n, _ := c.CountMessagesContext(context.Background(), msgs)
	return n
}

// CountMessagesContext is CountMessages that stops, returning ctx.Err(),
// soon after ctx ends.
func (c *TokenCounter) CountMessagesContext(ctx context.Context, msgs []Message) (int, error) {
	n := 3
	for _, m := range msgs {
		k, err := c.c.CountContext(ctx, m.Content)
		if err != nil {
			return 0, err
		}
		n += 3 + k + 1
	}
	return n, nil
}
