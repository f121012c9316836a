// Package auth is chatgate's ground floor: API keys and the principals they
// authenticate.
//
// A key is shown once, when it is created or rotated; only its SHA-256 hash
// and a short display hint are stored. A [Key] is either a global (team) key
// or an app key that carries an app id, and it holds scopes, an expiry, a
// points quota, a per-minute rate limit and an IP allow-list.
//
// The [Authenticator] checks a bearer token on every request against all of
// those limits and places the resulting [Principal] in the request context,
// where handlers read it with [FromContext]. The [Manager] runs the key
// lifecycle: create, import, update, rotate with a grace period, revoke, and
// the keys declared in a config file; every change is written to the audit
// trail in the same transaction as the change itself.
//
// Keys live in a [Store]: [NewBoltStore] for a bbolt file and [NewMemoryStore]
// for tests or for callers that keep state elsewhere.
package auth
