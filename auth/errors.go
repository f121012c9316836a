package auth

import (
	"net/http"

	"github.com/chatgate/chatgate/apierror"
)

// The errors the authenticator and the key API answer with.
var (
	ErrInvalidKey        = &apierror.Error{Status: http.StatusUnauthorized, Code: "invalid_api_key", Message: "API key is invalid"}
	ErrKeyDisabled       = &apierror.Error{Status: http.StatusUnauthorized, Code: "api_key_disabled", Message: "API key is disabled"}
	ErrKeyExpired        = &apierror.Error{Status: http.StatusUnauthorized, Code: "api_key_expired", Message: "API key has expired"}
	ErrIPNotAllowed      = &apierror.Error{Status: http.StatusForbidden, Code: "ip_not_allowed", Message: "client IP address is not allowed for this API key"}
	ErrScopeDenied       = &apierror.Error{Status: http.StatusForbidden, Code: "scope_denied", Message: "API key lacks the scope this route needs"}
	ErrInsufficientQuota = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeInsufficientQuota, Message: "API key has spent its usage points"}
	ErrRateLimited       = &apierror.Error{Status: http.StatusTooManyRequests, Code: apierror.CodeRateLimited, Message: "API key rate limit exceeded"}
	// ErrTooManyFailures answers a request whose key is not valid, from a
	// client address that has failed authentication too often this minute
	// (Options.FailureLimitPerMinute). A valid key is never refused with it.
	ErrTooManyFailures = &apierror.Error{Status: http.StatusTooManyRequests, Code: "too_many_auth_failures",
		Message: "too many failed authentications from this address; retry later with a valid API key"}
	// ErrConfigManaged answers attempts to change a key declared in the config file.
	ErrConfigManaged = &apierror.Error{Status: http.StatusConflict, Code: "key_managed_by_config", Message: "key is declared in the config file and cannot be changed through the API"}
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

// ScopeDenied returns the 403 scope_denied error naming the scope the route needs.
func ScopeDenied(scope Scope) *apierror.Error {
	return ErrScopeDenied.WithMessage("%s: %s", ErrScopeDenied.Message, scope)
}
