package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/tokens"
)

// contextCounter counts words and stops on a done context.
type contextCounter struct{ calls *int }

func (c contextCounter) Count(text string) int { *c.calls++; return len(strings.Fields(text)) }
func (c contextCounter) CountContext(ctx context.Context, text string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return c.Count(text), nil
}

func TestCountContext(t *testing.T) {
	calls := 0
	words := tokens.CounterFunc(func(text string) int { calls++; return len(strings.Fields(text)) })
	for _, c := range []tokens.Counter{words, contextCounter{&calls}} {
		if n, err := tokens.CountContext(context.Background(), c, "three small words"); n != 3 || err != nil {
			t.Fatalf("%T: %d, %v", c, n, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := calls
		if n, err := tokens.CountContext(ctx, c, "three small words"); n != 0 || !errors.Is(err, context.Canceled) || calls != before {
			t.Fatalf("%T on a done context: %d, %v, counted %d times", c, n, err, calls-before)
		}
	}
}

func TestEstimate(t *testing.T) {
	var e tokens.Estimate
	for text, want := range map[string]int{
		"":             0,
		"four":         1,
		"hello":        2,
		"导演是谁":         4,
		"the 导演 is":    1 + 2 + 1,
		"emoji 🙂 here": 2 + 1 + 2,
	} {
		if got := e.Count(text); got != want {
			t.Errorf("Estimate.Count(%q) = %d, want %d", text, got, want)
		}
	}
	// The estimate stays near cl100k_base for English prose.
	var exact cl100k.Counter
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog, and then it rests. ", 50)
	if est, n := e.Count(prose), exact.Count(prose); est < n*2/3 || est > n*3/2 {
		t.Fatalf("estimate %d for %d cl100k tokens", est, n)
	}
}

func ExampleCounterFunc() {
	words := tokens.CounterFunc(func(text string) int { return len(strings.Fields(text)) })
	n, _ := tokens.CountContext(context.Background(), words, "a token a word")
	fmt.Println(n, tokens.Estimate{}.Count("a token a word"))
	// Output: 4 4
}
