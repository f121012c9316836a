// Package field checks the request fields every chatgate domain takes: ids,
// names and bounded texts. A failed check is a 400 invalid_request naming
// the field (an *httpjson.DecodeError), so a handler can answer it as is.
//
// The rules:
//
//   - An id is 1 to 128 bytes of ASCII letters, digits, '_', '.', ':' and
//     '-', starting with a letter or digit ([A-Za-z0-9][A-Za-z0-9_.:-]{0,127}).
//     Every id chatgate makes fits: 24-hex record ids, app ids, "main",
//     team "default", key ids "root" and "cfg-<account>" (for config
//     account names that fit). NUL never fits, so ids joined with NUL into
//     storage keys cannot run into each other.
//   - A name is trimmed of surrounding space, then 1 to 200 characters of
//     valid UTF-8 without control characters.
//   - A text is valid UTF-8 without NUL, at most a stated number of bytes;
//     a line text (a source, a file id, a model name) has no control
//     characters at all.
package field

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatgate/chatgate/internal/httpjson"
)

// Limits of the rules above.
const (
	MaxIDLen   = 128 // bytes
	MaxNameLen = 200 // characters
)

func invalid(name, format string, args ...any) error {
	return &httpjson.DecodeError{Field: name, Reason: fmt.Sprintf(format, args...)}
}

// ID checks a required id.
func ID(name, v string) error {
	if v == "" {
		return invalid(name, "is required")
	}
	return OptionalID(name, v)
}

// OptionalID checks an id that may be absent ("").
func OptionalID(name, v string) error {
	if v == "" {
		return nil
	}
	if len(v) > MaxIDLen {
		return invalid(name, "is longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(v); i++ {
		if !idByte(v[i], i == 0) {
			return invalid(name, "must be letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
		}
	}
	return nil
}

func idByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case first:
		return false
	}
	return c == '_' || c == '.' || c == ':' || c == '-'
}

// IDs checks a list of ids, at most max of them; errors name the element,
// e.g. datasetIds[2].
func IDs(name string, vs []string, max int) error {
	if len(vs) > max {
		return invalid(name, "holds %d ids, more than %d", len(vs), max)
	}
	for i, v := range vs {
		if err := ID(fmt.Sprintf("%s[%d]", name, i), v); err != nil {
			return err
		}
	}
	return nil
}

// Name checks a required name and returns it trimmed.
func Name(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", invalid(name, "is required")
	}
	return v, nameRunes(name, v)
}

// OptionalName checks a name that may be absent and returns it trimmed.
func OptionalName(name, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	return v, nameRunes(name, v)
}

func nameRunes(name, v string) error {
	if !utf8.ValidString(v) {
		return invalid(name, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > MaxNameLen {
		return invalid(name, "is %d characters, more than %d", n, MaxNameLen)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return invalid(name, "must not contain control characters")
	}
	return nil
}

// Text checks a text of at most max bytes: valid UTF-8 without NUL. Tabs
// and line breaks are allowed.
func Text(name, v string, max int) error {
	if len(v) > max {
		return invalid(name, "is %d bytes, more than %d", len(v), max)
	}
	if !utf8.ValidString(v) {
		return invalid(name, "is not valid UTF-8")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid(name, "must not contain NUL")
	}
	return nil
}

// Line checks a one-line text of at most max bytes: valid UTF-8 without
// control characters.
func Line(name, v string, max int) error {
	if err := Text(name, v, max); err != nil {
		return err
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return invalid(name, "must not contain control characters")
	}
	return nil
}

// First returns the first non-nil error, so a handler can run its checks
// in the order the fields appear and answer the first that fails.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
