package auth

import (
	"fmt"
	"slices"

	"github.com/chatgate/chatgate/apierror"
)

// Scope names a family of routes a key may call.
type Scope string

// The scopes chatgate's routes require. ScopeAdmin implies every other scope.
const (
	ScopeChat         Scope = "chat"
	ScopeDatasetRead  Scope = "dataset:read"
	ScopeDatasetWrite Scope = "dataset:write"
	ScopeBillingRead  Scope = "billing:read"
	ScopeAdmin        Scope = "admin"
)

// AllScopes lists every scope, in the order they are documented.
func AllScopes() []Scope {
	return []Scope{ScopeChat, ScopeDatasetRead, ScopeDatasetWrite, ScopeBillingRead, ScopeAdmin}
}

// Valid reports whether s is one of the known scopes.
func (s Scope) Valid() bool { return slices.Contains(AllScopes(), s) }

// Scopes is a set of scopes.
type Scopes []Scope

// Has reports whether the set grants s, directly or through ScopeAdmin.
func (ss Scopes) Has(s Scope) bool {
	for _, x := range ss {
		if x == s || x == ScopeAdmin {
			return true
		}
	}
	return false
}

// normalize validates ss and returns it sorted without duplicates.
func (ss Scopes) normalize() (Scopes, error) {
	out := make(Scopes, 0, len(ss))
	for _, s := range ss {
		if !s.Valid() {
			return nil, apierror.InvalidRequest("scopes", "unknown scope %q (known: chat, dataset:read, dataset:write, billing:read, admin)", s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// defaultScopes are granted when a key is created without scopes: an app key
// may chat with its app, a global key may work with the team's data.
func defaultScopes(appID string) Scopes {
	if appID != "" {
		return Scopes{ScopeChat}
	}
	return Scopes{ScopeBillingRead, ScopeDatasetRead, ScopeDatasetWrite}
}

// String lists the scopes, as fmt prints a slice.
func (ss Scopes) String() string { return fmt.Sprint([]Scope(ss)) }
