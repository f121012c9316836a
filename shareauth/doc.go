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
//
// A hookUrl is chosen by a team admin and called on a keyless visitor's
// behalf, so the default client guards the network it runs in: it refuses
// loopback, private, link-local, multicast, unspecified and reserved
// addresses (in a hookUrl given as an address, at create, and on every
// resolved address at connect, so DNS rebinding does not pass) unless
// Options.AllowHosts lists them, never follows redirects and ignores proxy
// variables. Every failure of the host reaches the visitor as the same
// ErrHookFailed, so a link cannot tell open, closed and slow targets apart;
// the cause goes to the log and Options.OnHookFailure. Init calls to the
// host are rate-limited per link.
//
// # Chat
//
// shareauth does not import chat, nor chat shareauth. A visitor's chat
// request reaches chat's handler, which asks its own small interface
// whether a keyless caller is a share-link visitor; the program that has
// both (chatgate's server) adapts a Service to it. Service.Admit lets the
// visitor in for one question (the link's limits, then the host's
// /shareAuth/start) and returns the Admission; once the answer is out,
// Service.Finish queues the /shareAuth/finish callback with the chat's
// module responses, and Service.Charge adds the points it spent to the
// link. The link's appId is vetted through Options.Apps, an AppChecker the
// same program provides.
//
// # Layout
//
// The core is this package: Service (links, admissions, the finish
// outbox, which runs on a queue.Runner), Handler (the admin routes and the
// visitor's init, listed by Routes and mounted by Register behind an
// auth.Guard), the signature (Sign, Verifier) and the hook client's
// network guard. Store is LinkStore and Outbox, the latter a queue.Store
// of Delivery jobs; MemoryStore and BoltStore implement it. Subpackage
// shareauthtest is the conformance suite every Store runs.
package shareauth
