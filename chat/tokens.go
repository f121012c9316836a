package chat

import (
	"context"

	"github.com/chatgate/chatgate/tokens"
)

// CountMessages counts a chat prompt the way OpenAI bills it: each
// message's content plus 3 tokens of framing and 1 for its role, plus 3
// that prime the reply. It stops, returning ctx.Err(), soon after ctx
// ends: between messages, and within one when c is a
// tokens.ContextCounter.
func CountMessages(ctx context.Context, c tokens.Counter, msgs []Message) (int, error) {
	n := 3
	for _, m := range msgs {
		k, err := tokens.CountContext(ctx, c, m.Content)
		if err != nil {
			return 0, err
		}
		n += 3 + k + 1
	}
	return n, nil
}
