package httpjson_test

import (
	"fmt"

	"github.com/chatgate/chatgate/internal/httpjson"
)

func ExampleStripTrailingCommas() {
	fmt.Println(string(httpjson.StripTrailingCommas([]byte(`{"q":"a, b",}`))))
	// Output: {"q":"a, b"}
}
