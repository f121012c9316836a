package auth

import "net/http"

// Guard puts a route behind API keys: it authenticates the caller, checks
// that the key holds scope ("" lets any key in), and answers a refusal with
// onError. *Authenticator is the Guard chatgate ships; a service with its
// own notion of callers can supply another.
type Guard interface {
	RequireWith(scope Scope, h http.Handler, onError ErrorWriter) http.Handler
}

// GuardFunc adapts a function to a Guard.
type GuardFunc func(scope Scope, h http.Handler, onError ErrorWriter) http.Handler

// RequireWith calls f.
func (f GuardFunc) RequireWith(scope Scope, h http.Handler, onError ErrorWriter) http.Handler {
	return f(scope, h, onError)
}

// Route is one endpoint of a domain's HTTP API, with what it takes to be
// let in. Every domain's Handler lists its routes with Routes and mounts
// them with Register, which is Mount on that list; so each domain mounts
// the same way, and a route whose clients expect another error shape (chat
// completions, for OpenAI's SDKs) carries its own OnError rather than
// relying on the caller to pick it.
type Route struct {
	// Pattern is a net/http ServeMux pattern: "POST /api/core/app/create".
	Pattern string
	// Scope is what the key needs; "" lets any key in, for handlers that
	// check more themselves.
	Scope Scope
	// Public routes take no key at all (a share-link visitor's); Scope and
	// OnError are ignored.
	Public bool
	// MaxBody, when positive, caps the request body before anything reads it.
	MaxBody int64
	// OnError answers requests the guard refuses; nil answers in FastGPT's
	// envelope (WriteEnvelopeError).
	OnError ErrorWriter
	Handler http.Handler
	// Keyless, when set, is offered the requests that carry no
	// Authorization header before the guard sees them: a share-link
	// visitor's chat, say. What it declines goes to the guard, which
	// refuses it for want of a key.
	Keyless KeylessHandler
}

// KeylessHandler serves a route's callers that come without an API key.
type KeylessHandler interface {
	// ServeKeyless answers r and reports true, or reports false having
	// written nothing, to leave r to the guard. The guard refuses such a
	// request without reading its body, so ServeKeyless may read the body
	// to decide.
	ServeKeyless(w http.ResponseWriter, r *http.Request) bool
}

// KeylessHandlerFunc adapts a function to a KeylessHandler.
type KeylessHandlerFunc func(w http.ResponseWriter, r *http.Request) bool

// ServeKeyless calls f.
func (f KeylessHandlerFunc) ServeKeyless(w http.ResponseWriter, r *http.Request) bool { return f(w, r) }

// Mount registers routes on mux, each behind g.
func Mount(mux *http.ServeMux, g Guard, routes ...Route) {
	for _, rt := range routes {
		mux.Handle(rt.Pattern, rt.handler(g))
	}
}

// handler is rt's handler behind g and its body limit.
func (rt Route) handler(g Guard) http.Handler {
	h := rt.Handler
	if !rt.Public {
		onError := rt.OnError
		if onError == nil {
			onError = WriteEnvelopeError
		}
		h = g.RequireWith(rt.Scope, h, onError)
		if rt.Keyless != nil {
			keyed, keyless := h, rt.Keyless
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "" && keyless.ServeKeyless(w, r) {
					return
				}
				keyed.ServeHTTP(w, r)
			})
		}
	}
	if rt.MaxBody <= 0 {
		return h
	}
	limit, next := rt.MaxBody, h
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
