package auth

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParseAuthorization feeds an Authorization header value through
// ParseBearer and checkToken, the two checks a request passes before any
// store lookup, and asserts what they promise whatever the input.
func FuzzParseAuthorization(f *testing.F) {
	gen := generateKey(DefaultPrefix)
	for _, s := range []string{
		"Bearer " + goldenKey,
		"bearer " + gen,
		"  BEARER   " + gen + "  ",
		"Bearer " + gen[:len(gen)-1],
		"Bearer " + gen[:len(gen)-1] + "0",
		"Bearer " + gen + "0",
		"Bearer " + DefaultPrefix + "short",
		"Bearer imported-key",
		"Bearer abcd",
		"Bearer a b",
		"Bearer a\tb",
		"Bearer a\nb",
		"Bearer a\u00a0b",
		"Bearer ключ-ключ",
		"Bearer",
		"Bearer ",
		"Basic YWxhZGRpbjpvcGVuc2VzYW1l",
		"",
		goldenKey,
		"Bearer " + strings.Repeat("x", 300),
		"Bearer \x00\x01\x02\x03\x04\x05",
		"Bearer \xff\xfe\xfd\xfc\xfb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := ParseBearer(header)
		if err != nil {
			if tok != "" {
				t.Fatalf("ParseBearer(%q) = %q with error %v", header, tok, err)
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParseBearer(%q) error %v is not ErrInvalidKey", header, err)
			}
			// The raw value still goes through checkToken: it must hold
			// its invariants on any string, not only on parsed tokens.
			checkTokenInvariants(t, header)
			return
		}
		if tok == "" {
			t.Fatalf("ParseBearer(%q) returned an empty token", header)
		}
		if strings.ContainsAny(tok, " \t") {
			t.Fatalf("ParseBearer(%q) = %q, which contains a space or tab", header, tok)
		}
		if strings.TrimSpace(tok) != tok {
			t.Fatalf("ParseBearer(%q) = %q, which has surrounding white space", header, tok)
		}
		if !strings.Contains(header, tok) {
			t.Fatalf("ParseBearer(%q) = %q, which is not part of the header", header, tok)
		}
		checkTokenInvariants(t, tok)
	})
}

// checkTokenInvariants asserts what acceptance by checkToken guarantees.
func checkTokenInvariants(t *testing.T, tok string) {
	t.Helper()
	for _, prefix := range []string{DefaultPrefix, ""} {
		err := checkToken(prefix, tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("checkToken(%q, %q) = %v, want ErrInvalidKey", prefix, tok, err)
			}
			continue
		}
		if len(tok) < minKeyLen || len(tok) > maxKeyLen {
			t.Fatalf("checkToken(%q, %q) accepted a token of %d bytes", prefix, tok, len(tok))
		}
		if !utf8.ValidString(tok) {
			t.Fatalf("checkToken(%q, %q) accepted invalid UTF-8", prefix, tok)
		}
		for _, r := range tok {
			if r <= ' ' || r > '~' || unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("checkToken(%q, %q) accepted character %q", prefix, tok, r)
			}
		}
		if prefix != "" && strings.HasPrefix(tok, prefix) {
			checkGeneratedShape(t, prefix, tok)
		}
	}
}

// checkGeneratedShape verifies an accepted prefixed token independently of
// checkToken: exact length, base62 throughout, and the CRC32 of prefix+body
// in the last six characters.
func checkGeneratedShape(t *testing.T, prefix, tok string) {
	t.Helper()
	if len(tok) != len(prefix)+43+6 {
		t.Fatalf("checkToken accepted prefixed %q of length %d, want %d", tok, len(tok), len(prefix)+43+6)
	}
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	rest := tok[len(prefix):]
	var sum uint64
	for i := 0; i < len(rest); i++ {
		d := strings.IndexByte(digits, rest[i])
		if d < 0 {
			t.Fatalf("checkToken accepted prefixed %q with non-base62 %q at %d", tok, rest[i], len(prefix)+i)
		}
		if i >= 43 {
			sum = sum*62 + uint64(d)
		}
	}
	if want := crc32.ChecksumIEEE([]byte(tok[:len(tok)-6])); sum != uint64(want) {
		t.Fatalf("checkToken accepted prefixed %q whose checksum is %d, want %d", tok, sum, want)
	}
}
