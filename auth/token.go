package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
	"unsafe"
)

// DefaultPrefix starts every key chatgate generates unless Options.Prefix says otherwise.
const DefaultPrefix = "cg-"

const (
	bodyLen     = 43  // base62 digits of 32 random bytes
	checksumLen = 6   // base62 digits of a CRC32
	minKeyLen   = 5   // shortest key accepted for import, as Dify requires
	maxKeyLen   = 256 // longest token looked at; anything longer is garbage
	base62      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Hash is the SHA-256 of a whole key: the only form in which keys are stored.
type Hash [sha256.Size]byte

// HashKey returns the stored form of key.
func HashKey(key string) Hash {
	var buf [maxKeyLen]byte
	if len(key) <= len(buf) {
		// Hashing from a stack copy keeps the hot path free of allocations.
		return sha256.Sum256(append(buf[:0], key...))
	}
	return sha256.Sum256([]byte(key))
}

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Equal compares two hashes in constant time.
func (h Hash) Equal(o Hash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// IsZero reports whether h is the zero hash (no key).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes the hash as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("auth: hash must be %d hex characters", 2*len(h))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// generateKey returns a new key: prefix, 43 base62 characters of 32 random
// bytes, and 6 base62 characters of the CRC32 of what precedes them.
func generateKey(prefix string) string {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // never fails since Go 1.24
	n := new(big.Int).SetBytes(raw[:])
	var b strings.Builder
	b.Grow(len(prefix) + bodyLen + checksumLen)
	b.WriteString(prefix)
	b.WriteString(leftPad(n.Text(62), bodyLen))
	sum := crc32.ChecksumIEEE([]byte(b.String()))
	b.WriteString(encodeChecksum(sum))
	return b.String()
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

// encodeChecksum writes sum as exactly checksumLen base62 digits.
func encodeChecksum(sum uint32) string {
	var out [checksumLen]byte
	v := uint64(sum)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// checkToken rejects a token that cannot be a key before any store lookup:
// wrong length, characters outside printable ASCII, or, for a token that
// carries the generated-key prefix, a wrong shape or checksum. Tokens without
// the prefix may be imported or config keys, which have no checksum. Each
// failure is ErrInvalidKey with a message saying which check failed.
func checkToken(prefix, token string) error {
	if len(token) < minKeyLen || len(token) > maxKeyLen {
		return errKeyLength
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return errKeyChars
		}
	}
	if prefix == "" || !strings.HasPrefix(token, prefix) {
		return nil
	}
	if len(token) != len(prefix)+bodyLen+checksumLen {
		return errKeyShape
	}
	rest := token[len(prefix):]
	var sum uint64
	for i := 0; i < len(rest); i++ {
		d := strings.IndexByte(base62, rest[i])
		if d < 0 {
			return errKeyShape
		}
		if i >= bodyLen {
			sum = sum*62 + uint64(d)
		}
	}
	// crc32 reads the bytes without keeping them, but its assembly makes the
	// argument escape: a copy would be a heap allocation on every request, so
	// it reads the string's own bytes instead.
	signed := token[:len(token)-checksumLen]
	want := crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(signed), len(signed)))
	if sum != uint64(want) {
		return errKeyChecksum
	}
	return nil
}

// ParseBearer extracts the token from an Authorization header value. It
// accepts the scheme in any case and surrounding spaces. Anything else is
// ErrInvalidKey to errors.Is, with a message that says whether the header
// was missing, used another scheme, or held no single token.
func ParseBearer(header string) (string, error) {
	const scheme = "bearer"
	h := strings.TrimSpace(header)
	if h == "" {
		return "", errKeyMissing
	}
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) ||
		(len(h) > len(scheme) && h[len(scheme)] != ' ') {
		return "", errNotBearer
	}
	tok := strings.TrimSpace(h[len(scheme):])
	if tok == "" {
		return "", errKeyMissing
	}
	if strings.ContainsAny(tok, " \t") {
		return "", errBearerShape
	}
	return tok, nil
}

// hint returns what lists show instead of the key: enough to recognise it,
// never enough to use it. Short imported keys reveal proportionally less.
func hint(prefix, key string) string {
	body := key
	if prefix != "" && strings.HasPrefix(key, prefix) {
		body = key[len(prefix):]
	} else {
		prefix = ""
	}
	n := min(4, len(body)/4)
	return prefix + body[:n] + "..." + body[len(body)-n:]
}
