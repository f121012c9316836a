package auth

import "context"

// Principal is who a request acts as: the key that authenticated it and what
// that key may do. The middleware puts it in the request context. A Principal
// is shared between requests; treat it as read-only.
type Principal struct {
	KeyID   string `json:"keyId"`
	KeyName string `json:"name"`
	TeamID  string `json:"teamId"`
	// AppID is set for app keys: they chat with that app only.
	AppID  string `json:"appId,omitempty"`
	Scopes Scopes `json:"scopes"`
	Source Source `json:"source"`
}

// Has reports whether the principal holds scope s (ScopeAdmin holds all).
func (p *Principal) Has(s Scope) bool { return p != nil && p.Scopes.Has(s) }

// IsAppKey reports whether the principal is an app key.
func (p *Principal) IsAppKey() bool { return p != nil && p.AppID != "" }

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the middleware placed in ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// MustFromContext returns the principal a Guard placed in ctx, for the
// handlers of routes that are only ever mounted behind one. Its absence is
// a wiring bug, so MustFromContext panics rather than serve a caller it
// cannot name.
func MustFromContext(ctx context.Context) *Principal {
	p, ok := FromContext(ctx)
	if !ok {
		panic("auth: no principal in the request context: the handler is mounted without a Guard")
	}
	return p
}
