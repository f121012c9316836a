package tokens_test

import (
	"fmt"

	"github.com/chatgate/chatgate/internal/tokens"
)

func ExampleCounter() {
	var c tokens.Counter
	fmt.Println(c.Count("hello world"))
	// Output: 2
}
