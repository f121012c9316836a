package shareauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The callback signature headers.
const (
	HeaderTimestamp = "X-Chatgate-Timestamp"
	HeaderSignature = "X-Chatgate-Signature"
)

// DefaultTolerance is how far a callback's timestamp may be from the
// verifier's clock.
const DefaultTolerance = 5 * time.Minute

// Sign returns the X-Chatgate-Signature value for body sent at ts:
// "sha256=" + hex(HMAC-SHA256(secret, "<ts>.<body>")).
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verification errors; match with errors.Is.
var (
	ErrMissingSignature = errors.New("shareauth: callback is not signed")
	ErrBadSignature     = errors.New("shareauth: callback signature does not match")
	ErrStale            = errors.New("shareauth: callback timestamp is outside the tolerance")
)

// Verifier checks chatgate's signed callbacks on the app owner's server,
// against its clock (tests move it with testing/synctest). Its zero value
// needs Secret set; the other fields have defaults.
type Verifier struct {
	Secret    string        // the link's secret, shown when the link was created
	Tolerance time.Duration // default DefaultTolerance
	MaxBody   int64         // default 1 MiB
}

// Verify reads r's body and returns it if r carries a valid signature from
// within the tolerance; r.Body is consumed. A replay of a genuine call is
// refused once its timestamp is stale; within the tolerance, callers who
// must refuse exact replays can remember signatures they have seen.
func (v *Verifier) Verify(r *http.Request) ([]byte, error) {
	max := v.MaxBody
	if max <= 0 {
		max = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("shareauth: reading callback: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("shareauth: callback body exceeds %d bytes", max)
	}
	return body, v.Check(r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body)
}

// Check verifies the header values for body.
func (v *Verifier) Check(timestamp, signature string, body []byte) error {
	if timestamp == "" || signature == "" {
		return ErrMissingSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(v.Secret, ts, body))) {
		return ErrBadSignature
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if d := time.Since(time.Unix(ts, 0)); d > tol || d < -tol {
		return ErrStale
	}
	return nil
}
