package cl100k

import (
	"unicode"
	"unicode/utf8"
)

// cl100kPattern is cl100k_base's pre-tokenizer, as tiktoken defines it.
// pieceEnd implements it by hand; the tests hold the two to the same
// pieces. Seven alternatives, tried in order at each position:
//
//  1. (?i:'s|'t|'re|'ve|'m|'ll|'d)   contractions
//  2. [^\r\n\p{L}\p{N}]?\p{L}+        a word, with one leading non-letter
//  3. \p{N}{1,3}                      up to three digits
//  4. " "?[^\s\p{L}\p{N}]+[\r\n]*     punctuation and the line breaks after it
//  5. \s*[\r\n]+                      whitespace up to its last line break
//  6. \s+(?!\S)                       whitespace but the last character before a non-space
//  7. \s+                             that last character
const cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// class is what the pattern can tell of a character.
type class uint8

const (
	letter  class = iota // \p{L}
	number               // \p{N}
	space                // \s but \r and \n
	newline              // \r, \n
	other                // [^\s\p{L}\p{N}]
)

// classOf uses the tables regexp2 uses for \p{L}, \p{N} and \s.
func classOf(r rune) class {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			return letter
		case '0' <= r && r <= '9':
			return number
		case r == '\r' || r == '\n':
			return newline
		case r == ' ' || '\t' <= r && r <= '\r':
			return space
		}
		return other
	}
	switch {
	case unicode.IsLetter(r):
		return letter
	case unicode.IsNumber(r):
		return number
	case unicode.IsSpace(r):
		return space
	}
	return other
}

func decode(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// skip returns the end of the run of characters of class c from i.
func skip(s string, i int, c class) int {
	for i < len(s) {
		r, n := decode(s, i)
		if classOf(r) != c {
			break
		}
		i += n
	}
	return i
}

// pieceEnd returns where the piece that starts at i ends, i < len(s), s
// valid UTF-8. Every piece is found in one pass over its characters (the
// whitespace alternatives look at the rest of a whitespace run, which the
// next piece then starts after), so splitting a text is linear in its
// length, whatever it holds; regexp2's backtracking makes no such promise.
func pieceEnd(s string, i int) int {
	r, n := decode(s, i)
	j := i + n
	if r == '\'' && j < len(s) {
		if k := contraction(s, j); k > 0 {
			return k
		}
	}
	c := classOf(r)
	switch c {
	case letter:
		return skip(s, j, letter)
	case number:
		for d := 1; d < 3 && j < len(s); d++ {
			r, n := decode(s, j)
			if classOf(r) != number {
				break
			}
			j += n
		}
		return j
	}
	if j == len(s) {
		return j
	}
	r2, n2 := decode(s, j)
	c2 := classOf(r2)
	switch {
	case c != newline && c2 == letter:
		return skip(s, j+n2, letter)
	case c == other || r == ' ' && c2 == other:
		return skip(s, skip(s, j, other), newline)
	}
	// Whitespace: up to its last line break (5); else all of it if the
	// text ends there or all but its last character, which goes with
	// what follows (6); else the one character (7).
	q, last, lastBreak := j, i, -1
	if c == newline {
		lastBreak = i
	}
run:
	for q < len(s) {
		r, n := decode(s, q)
		switch classOf(r) {
		case newline:
			lastBreak = q
		case space:
		default:
			break run
		}
		last = q
		q += n
	}
	switch {
	case lastBreak >= 0:
		return lastBreak + 1
	case q == len(s) || last == i:
		return q
	}
	return last
}

// contraction returns the end of 's, 't, 're, 've, 'm, 'll or 'd (any
// case) after the apostrophe before j, or 0.
func contraction(s string, j int) int {
	r, n := decode(s, j)
	var want rune
	switch unicode.ToLower(r) {
	case 's', 't', 'm', 'd':
		return j + n
	case 'r', 'v':
		want = 'e'
	case 'l':
		want = 'l'
	default:
		return 0
	}
	if j += n; j < len(s) {
		if r, n := decode(s, j); unicode.ToLower(r) == want {
			return j + n
		}
	}
	return 0
}
