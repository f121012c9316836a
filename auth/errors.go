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
// Match errors with errors.Is against the sentinels below; two Errors match
// when their statusText codes are equal, whatever their messages.
type Error struct {
	Status  int    // HTTP status; equals the envelope's code
	Code    string // statusText, e.g. "invalid_api_key"
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
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

// Is reports whether target is an API error with the same statusText.
func (e *Error) Is(target error) bool {
	t, ok := target.(interface{ StatusText() string })
	return ok && t.StatusText() == e.Code
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
	ErrInvalidRequest    = &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "invalid request"}
	ErrNotFound          = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	ErrConflict          = &Error{Status: http.StatusConflict, Code: "conflict", Message: "conflict"}
	// ErrConfigManaged answers attempts to change a key declared in the config file.
	ErrConfigManaged = &Error{Status: http.StatusConflict, Code: "key_managed_by_config", Message: "key is declared in the config file and cannot be changed through the API"}
)

// InvalidRequest returns a 400 invalid_request error naming the field.
func InvalidRequest(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = fmt.Sprintf("invalid field %q: %s", field, msg)
	}
	return &Error{Status: http.StatusBadRequest, Code: ErrInvalidRequest.Code, Message: msg}
}

// NotFound returns a 404 not_found error for the named kind of object.
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: ErrNotFound.Code, Message: what + " not found"}
}

// Reason returns the statusText of err if it is an API error, "internal_error"
// otherwise. Metrics and the audit trail label auth failures with it.
func Reason(err error) string {
	var ae interface{ StatusText() string }
	if errors.As(err, &ae) {
		return ae.StatusText()
	}
	return "internal_error"
}
