package billing

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// newRecordID names a record given without an id: 24 hex characters, the
// shape of id.New's, whose first 12 are the Unix milliseconds of now and
// last 12 random.
//
// The time comes first so that the records written together have ids
// next to each other: the bbolt ledger's id index, which every record is
// put in, then takes a commit's ids on its last page or two instead of one
// page per record at random (a page written and synced per record was most
// of what a commit cost). 48 random bits leave the id no easier to guess
// than to make up, and a ledger that made an id and finds it taken draws
// another (the caller cannot have delivered a record under an id it was
// never told), so two records of one millisecond never collapse into one.
func newRecordID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never returns an error since Go 1.24.
	return hex.EncodeToString(b[:])
}
