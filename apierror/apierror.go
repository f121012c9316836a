// Package apierror is the error vocabulary every chatgate domain answers
// with: an HTTP status, the statusText code clients switch on, and a message
// for people. It imports nothing of chatgate, so any package, chatgate's or
// a user's, can make and match these errors without linking a domain.
//
// Each package-level sentinel (ErrInvalidRequest here, auth.ErrInvalidKey,
// dataset.ErrDataNotFound, ...) matches only itself under errors.Is: two
// sentinels that share a status or a statusText are still different errors.
// An error made from a sentinel for one call ([InvalidRequest], [NotFound],
// [Error.WithMessage], [Error.WithRetryAfter]) unwraps to that sentinel, so
// errors.Is(InvalidRequest("name", "is required"), ErrInvalidRequest) holds.
//
// To match a whole category, every 404 say, whichever package made it, use
// errors.As with an *Error and compare HTTPStatus or StatusText, or compare
// [Reason] with the statusText.
package apierror

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is an API error. Define a sentinel with a composite literal or
// [New]; derive per-call errors from it with WithMessage.
type Error struct {
	Status  int    // HTTP status; equals the envelope's code
	Code    string // statusText, e.g. "invalid_api_key"
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration

	base *Error // the sentinel this error was made from; nil for a sentinel
}

// New returns a new sentinel: an error that matches only itself.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Error returns the message the client is shown.
func (e *Error) Error() string { return e.Message }

// HTTPStatus returns the HTTP status the error is answered with.
func (e *Error) HTTPStatus() int { return e.Status }

// StatusText returns the machine-readable code, FastGPT's statusText.
func (e *Error) StatusText() string { return e.Code }

// RetryAfterSeconds returns RetryAfter rounded up to whole seconds.
func (e *Error) RetryAfterSeconds() int {
	if e.RetryAfter <= 0 {
		return 0
	}
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// Unwrap returns the sentinel e was made from, or nil for a sentinel.
func (e *Error) Unwrap() error {
	if e.base == nil {
		return nil // not a typed nil: errors.Is would walk into it
	}
	return e.base
}

// WithMessage returns an error with e's status and statusText and another
// message, which errors.Is matches to e. Use it to say what exactly is wrong
// while clients keep matching the sentinel.
func (e *Error) WithMessage(format string, args ...any) *Error {
	return &Error{Status: e.Status, Code: e.Code, Message: fmt.Sprintf(format, args...), RetryAfter: e.RetryAfter, base: e}
}

// WithRetryAfter returns e answered with a Retry-After of d, which
// errors.Is matches to e. Copying an Error by value would not match.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	return &Error{Status: e.Status, Code: e.Code, Message: e.Message, RetryAfter: d, base: e}
}

// The statusText of the 429s: a spent budget or quota, and a rate limit.
// Each domain has its own sentinels with these codes (auth.ErrRateLimited,
// shareauth.ErrQPM, ...); OpenAI's clients tell the two apart by them.
const (
	CodeInsufficientQuota = "insufficient_quota"
	CodeRateLimited       = "rate_limit_exceeded"
)

// The categories with no more specific sentinel: a request that cannot be
// served as sent, a missing object, a clash with what exists, and a store
// that cannot be reached (a request that needs it is answered at once
// rather than left to hang, and nothing it would have changed was
// acknowledged).
var (
	ErrInvalidRequest     = New(http.StatusBadRequest, "invalid_request", "invalid request")
	ErrNotFound           = New(http.StatusNotFound, "not_found", "not found")
	ErrConflict           = New(http.StatusConflict, "conflict", "conflict")
	ErrStorageUnavailable = New(http.StatusServiceUnavailable, "storage_unavailable", "storage is unavailable; retry shortly")
)

// InvalidRequest returns a 400 invalid_request error naming the field.
func InvalidRequest(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = fmt.Sprintf("invalid field %q: %s", field, msg)
	}
	return ErrInvalidRequest.WithMessage("%s", msg)
}

// NotFound returns a 404 not_found error for the named kind of object.
func NotFound(what string) *Error {
	return ErrNotFound.WithMessage("%s not found", what)
}

// Reason returns the statusText of err if it is an API error, "internal_error"
// otherwise. Metrics and the audit trail label failures with it, and
// comparing it is the simplest way to match a category of errors.
func Reason(err error) string {
	var ae interface{ StatusText() string }
	if errors.As(err, &ae) {
		return ae.StatusText()
	}
	return "internal_error"
}
