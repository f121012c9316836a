package id_test

import (
	"fmt"

	"github.com/chatgate/chatgate/internal/id"
)

func ExampleNew() {
	a, b := id.New(), id.New()
	fmt.Println(len(a), a != b)
	// Output: 24 true
}
