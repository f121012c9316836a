// Package auth is chatgate's identity layer: API keys, the principals they
// authenticate, the scopes that admit them to routes, and the Guard and
// Route with which every domain mounts its HTTP API. It is identity only:
// the API error type and its categories live in package apierror, which
// every domain imports for its errors; auth keeps just its own sentinels
// (ErrInvalidKey, ErrScopeDenied and the other refusals of a key).
//
// A key is shown once, when it is created or rotated; only its SHA-256 hash
// and a short display hint are stored. A [Key] is either a global (team) key
// or an app key that carries an app id, and it holds scopes, an expiry, a
// points quota, a per-minute rate limit and an IP allow-list.
//
// The [Authenticator] checks a bearer token on every request against all of
// those limits and places the resulting [Principal] in the request context,
// where handlers read it with [FromContext] (or [MustFromContext], behind a
// guard). The [Manager] runs the key lifecycle: create, import, update,
// rotate with a grace period, revoke, and the keys declared in a config
// file; every change is written to the audit trail in the same transaction
// as the change itself.
//
// Routes are mounted one way. A domain's Handler lists them with Routes,
// each a [Route]: its pattern, the [Scope] it needs (or Public), its body
// limit, the error shape its clients expect, and a [KeylessHandler] for
// callers that come without a key. Register is [Mount] on that list, behind
// a [Guard]: the Authenticator, or a [GuardFunc] of the embedder's own.
// This package's [Handler] is the key API, mounted the same way.
//
// Keys live in a [Store], split by who consumes it: the Authenticator needs
// an [AuthenticatorStore] (lookups, usage, the failures it audits, the
// trail's trim), the Manager a [ManagerStore] (lookups, changes, listing,
// the audit query); each is a composition of interfaces of one to three
// methods. [NewBoltStore] keeps keys in a bbolt file and [NewMemoryStore] in
// memory, for tests or for callers that keep state elsewhere; the
// auth/authtest package is the conformance suite any other Store must pass.
package auth
