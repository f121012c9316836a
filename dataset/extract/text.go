package extract

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Text returns the text of a txt or md file: UTF-8, with or without a
// byte-order mark, or UTF-16 with one. Anything else (a binary file, text
// in a legacy encoding) is refused with ErrInvalid rather than stored as
// mojibake.
func Text(name string, b []byte) (string, error) {
	s, err := decodeText(b)
	if err != nil {
		return "", Invalid(name, "%s", err.reason)
	}
	return s, nil
}

type textError struct{ reason string }

// decodeText decodes b as Text does.
func decodeText(b []byte) (string, *textError) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return decodeUTF16(b[2:], b[0] == 0xFE)
	}
	if binary(b) {
		return "", &textError{"is not text: it holds binary data (NUL or other control bytes)"}
	}
	if !utf8.Valid(b) {
		return "", &textError{"is not UTF-8 text (it may be binary, or in a legacy encoding: save it as UTF-8)"}
	}
	return string(b), nil
}

func decodeUTF16(b []byte, bigEndian bool) (string, *textError) {
	if len(b)%2 != 0 {
		return "", &textError{"is not UTF-16 text: it has an odd number of bytes"}
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	s := string(utf16.Decode(u))
	if binary([]byte(s)) {
		return "", &textError{"is not text: it holds binary data (NUL or other control bytes)"}
	}
	return s, nil
}

// binary reports whether text holds a NUL, or control characters other
// than tab, newline, carriage return and form feed in more than 1% of its
// bytes: what a text file never does and a binary file almost always does.
func binary(b []byte) bool {
	ctl := 0
	for _, c := range b {
		switch {
		case c == 0:
			return true
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f', c == 0x7f:
			ctl++
		}
	}
	return ctl > len(b)/100
}
