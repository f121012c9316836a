package chat

import "github.com/chatgate/chatgate/internal/tokens"

// TokenCounter counts tokens with cl100k_base, loaded from the encoder
// embedded in tiktoken-go-loader: nothing is downloaded, ever. The encoder
// is built on first use (it takes a moment); call Warm to build it early.
// Its zero value is ready.
type TokenCounter struct {
	c tokens.Counter
}

// Warm builds the encoder now and reports whether it could be built.
func (c *TokenCounter) Warm() error { return c.c.Warm() }

// Count returns the tokens of text. Special-token text is counted as plain
// text, since it came from users.
func (c *TokenCounter) Count(text string) int { return c.c.Count(text) }

// CountMessages counts a chat prompt the way OpenAI bills it: each message's
// content plus 3 tokens of framing, plus 3 that prime the reply.
func (c *TokenCounter) CountMessages(msgs []Message) int {
	n := 3
	for _, m := range msgs {
		n += 3 + c.Count(m.Content) + 1
	}
	return n
}
