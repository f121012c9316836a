package auth

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error is an API error: an HTTP status, the statusText code clients switch
// on, and a message for people. Every chatgate domain answers with it, so a
// client sees the same statusText values whichever route it called.
//
// Each package-level sentinel (ErrInvalidKey, dataset.ErrDataNotFound, ...)
// matches only itself under errors.Is: two sentinels that share a status or a
// statusText are still different errors. An error made from a sentinel for
// one call (InvalidRequest, NotFound, ScopeDenied, WithMessage, a rate-limit
// error carrying RetryAfter) unwraps to that sentinel, so
// errors.Is(InvalidRequest("name", "is required"), ErrInvalidRequest) holds.
//
// To match a whole category, every 404 say, whichever package made it, use
// errors.As with an *Error and compare HTTPStatus or StatusText, or compare
// Reason(err) with the statusText.
type Error struct {
	Status  int    // HTTP status; equals the envelope's code
	Code    string // statusText, e.g. "invalid_api_key"
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration

	base *Error // the sentinel this error was made from; nil for a sentinel
}

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

// The errors the authenticator and the key API answer with.
var (
	ErrInvalidKey        = &Error{Status: http.StatusUnauthorized, Code: "invalid_api_key", Message: "API key is invalid"}
	ErrKeyDisabled       = &Error{Status: http.StatusUnauthorized, Code: "api_key_disabled", Message: "API key is disabled"}
	ErrKeyExpired        = &Error{Status: http.StatusUnauthorized, Code: "api_key_expired", Message: "API key has expired"}
	ErrIPNotAllowed      = &Error{Status: http.StatusForbidden, Code: "ip_not_allowed", Message: "client IP address is not allowed for this API key"}
	ErrScopeDenied       = &Error{Status: http.StatusForbidden, Code: "scope_denied", Message: "API key lacks the scope this route needs"}
	ErrInsufficientQuota = &Error{Status: http.StatusTooManyRequests, Code: "insufficient_quota", Message: "API key has spent its usage points"}
	ErrRateLimited       = &Error{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded", Message: "API key rate limit exceeded"}
	// ErrTooManyFailures answers a request whose key is not valid, from a
	// client address that has failed authentication too often this minute
	// (Options.FailureLimitPerMinute). A valid key is never refused with it.
	ErrTooManyFailures = &Error{Status: http.StatusTooManyRequests, Code: "too_many_auth_failures",
		Message: "too many failed authentications from this address; retry later with a valid API key"}
	ErrInvalidRequest = &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "invalid request"}
	ErrNotFound       = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	ErrConflict       = &Error{Status: http.StatusConflict, Code: "conflict", Message: "conflict"}
	// ErrConfigManaged answers attempts to change a key declared in the config file.
	ErrConfigManaged = &Error{Status: http.StatusConflict, Code: "key_managed_by_config", Message: "key is declared in the config file and cannot be changed through the API"}
)

// The ways a bearer token can fail to name a key. Each is ErrInvalidKey to
// errors.Is and on the wire (401 invalid_api_key); only the message differs,
// so a client author can tell a missing header from a mistyped key. None
// says whether a well-formed key ever existed.
var (
	errKeyMissing  = ErrInvalidKey.WithMessage("API key is missing: send the header Authorization: Bearer <API key>")
	errNotBearer   = ErrInvalidKey.WithMessage("Authorization header is not a Bearer token: send Authorization: Bearer <API key>")
	errBearerShape = ErrInvalidKey.WithMessage("API key is malformed: the Bearer value must be one key, without spaces")
	errKeyLength   = ErrInvalidKey.WithMessage("API key is malformed: a key has %d to %d characters", minKeyLen, maxKeyLen)
	errKeyChars    = ErrInvalidKey.WithMessage("API key is malformed: a key holds printable ASCII characters only")
	errKeyShape    = ErrInvalidKey.WithMessage("API key is malformed: it carries the prefix of generated keys but not their length or alphabet")
	errKeyChecksum = ErrInvalidKey.WithMessage("API key is malformed: its checksum does not match (mistyped or truncated?)")
	errKeyUnknown  = ErrInvalidKey.WithMessage("API key is not recognised: no such key, or it was revoked, or rotated and its grace period has ended")
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

// ScopeDenied returns the 403 scope_denied error naming the scope the route needs.
func ScopeDenied(scope Scope) *Error {
	return ErrScopeDenied.WithMessage("%s: %s", ErrScopeDenied.Message, scope)
}

// Reason returns the statusText of err if it is an API error, "internal_error"
// otherwise. Metrics and the audit trail label auth failures with it, and
// comparing it is the simplest way to match a category of errors.
func Reason(err error) string {
	var ae interface{ StatusText() string }
	if errors.As(err, &ae) {
		return ae.StatusText()
	}
	return "internal_error"
}
