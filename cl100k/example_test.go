package cl100k_test

import (
	"fmt"

	"github.com/chatgate/chatgate/cl100k"
)

func ExampleCounter() {
	var c cl100k.Counter
	fmt.Println(c.Count("hello world"))
	// Output: 2
}
