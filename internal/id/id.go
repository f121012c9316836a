// Package id makes the record identifiers every chatgate domain uses.
package id

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random 24-character hex identifier, the same shape as the
// Mongo ObjectIds FastGPT clients are used to seeing. It is random rather than
// time-ordered so that ids cannot be guessed or enumerated across teams.
func New() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24.
	return hex.EncodeToString(b[:])
}
