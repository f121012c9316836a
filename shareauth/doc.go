// Package shareauth publishes chat apps through share links whose visitors
// chat without an API key, while the app owner's own server decides who may:
// chatgate calls the owner's /shareAuth/init, /shareAuth/start and
// /shareAuth/finish endpoints, as FastGPT does, and lets a visitor in only
// on {"success":true}.
//
// Every callback is signed: X-Chatgate-Timestamp carries the unix time and
// X-Chatgate-Signature "sha256=" + the hex HMAC-SHA256 of
// "<timestamp>.<raw body>" keyed with the link's secret. Verify checks both
// on the owner's side and refuses forged and replayed calls.
//
// init and start are synchronous and fail closed: a host that is slow,
// down, or answers anything but success keeps the visitor out. finish is
// delivered at least once from a durable outbox, after the visitor has the
// answer, with retries and backoff.
package shareauth
