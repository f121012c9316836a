package auth

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgate/chatgate/internal/httpjson"
)

// ErrorWriter answers a request that failed with err.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// WriteEnvelopeError answers err in FastGPT's envelope,
// {"code","statusText","message"}, with the HTTP status equal to code.
func WriteEnvelopeError(w http.ResponseWriter, r *http.Request, err error) {
	httpjson.WriteError(w, r, slog.Default(), err)
}

// Require returns a handler that authenticates the request's bearer key,
// checks that it holds scope, and calls h with the principal in the context.
// Failures are answered in the envelope; see RequireWith for other shapes.
func (a *Authenticator) Require(scope Scope, h http.Handler) http.Handler {
	return a.RequireWith(scope, h, WriteEnvelopeError)
}

// RequireWith is Require with failures answered by onError, for routes such
// as chat whose clients expect another error shape.
func (a *Authenticator) RequireWith(scope Scope, h http.Handler, onError ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.AuthenticateRequest(r)
		if err == nil && scope != "" && !p.Has(scope) {
			err = ScopeDenied(scope)
			a.denyScope(p, r)
		}
		var release func()
		if err == nil {
			// a key with a points quota is admitted against what the
			// requests already running will likely spend
			release, err = a.hold(r.Context(), p.KeyID)
			if err != nil && r.Context().Err() == nil {
				err = a.fail(err, nil, ClientIP(r, a.opts.TrustedProxies))
			}
		}
		if err != nil {
			onError(w, r, err)
			return
		}
		defer release()
		h.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// AuthenticateRequest authenticates r's Authorization header from r's client
// address (see ClientIP) without checking any scope.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*Principal, error) {
	client := ClientIP(r, a.opts.TrustedProxies)
	tok, err := ParseBearer(r.Header.Get("Authorization"))
	if err != nil {
		return nil, a.fail(err, nil, client)
	}
	return a.Authenticate(r.Context(), tok, client)
}

func (a *Authenticator) denyScope(p *Principal, r *http.Request) {
	if a.opts.OnFailure != nil {
		a.opts.OnFailure(ErrScopeDenied.Code)
	}
	a.failures.add(AuditEvent{Time: time.Now().UTC(), Action: AuditScopeDenied, KeyID: p.KeyID, TeamID: p.TeamID,
		Reason: r.Method + " " + r.URL.Path, RemoteIP: addrString(ClientIP(r, a.opts.TrustedProxies))})
}
