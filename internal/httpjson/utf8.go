package httpjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// CheckUTF8 returns a *DecodeError naming the first string of the JSON
// document raw that is not valid UTF-8, e.g. field data[3].q, or nil when
// every byte is valid. encoding/json would silently replace such bytes
// with U+FFFD, storing something the client did not send. Valid input
// costs one utf8.Valid pass; only invalid input is walked token by token.
// Malformed JSON that hides the invalid bytes is left for the decoder to
// report.
func CheckUTF8(raw []byte) error {
	if utf8.Valid(raw) {
		return nil
	}
	type frame struct {
		array   bool
		index   int    // array: the current element
		key     string // object: the current member
		haveKey bool   // object: key read, value next
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.array:
				fmt.Fprintf(&b, "[%d]", f.index)
			case f.haveKey:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if top := &stack[len(stack)-1]; top.array {
			top.index++
		} else {
			top.haveKey = false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil // malformed JSON (invalid bytes outside strings among it): the decoder's to report
		}
		bad := !utf8.Valid(raw[start:dec.InputOffset()])
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				stack = append(stack, frame{array: t == '['})
				continue
			}
			stack = stack[:len(stack)-1]
			valueDone()
		case string:
			if n := len(stack); n > 0 && !stack[n-1].array && !stack[n-1].haveKey {
				if bad {
					return &DecodeError{Field: path(), Reason: "has a member name that is not valid UTF-8"}
				}
				stack[n-1].key, stack[n-1].haveKey = t, true
				continue
			}
			if bad {
				return &DecodeError{Field: path(), Reason: "is not valid UTF-8"}
			}
			valueDone()
		default:
			valueDone()
		}
	}
}
