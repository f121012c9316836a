package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/chatgate/chatgate/internal/panics"
)

// Channel is the notification channel of key changes: Create, Update and
// Delete notify it in their transaction, with the key's id as payload, so
// that a replica hears of a change once it is there to read. Channels
// belong to the database, not to a schema: stores in several schemas of
// one database hear one another's changes, which costs them a cache drop.
const Channel = "chatgate_auth_keys"

// reconnectDelay is how long Watch waits to connect again after its
// connection is lost or could not be made.
const reconnectDelay = time.Second

// Watch listens on Channel until ctx ends, calling changed with the id of
// every key a replica creates, updates or deletes, and changed("") after
// each time it connects, the first included: "" means drop every cached
// key, since what was notified while Watch was not listening is lost. Give
// it the Authenticator the replica serves with:
//
//	go store.Watch(ctx, func(id string) {
//		if id == "" {
//			authn.InvalidateAll()
//		} else {
//			authn.Invalidate(id)
//		}
//	})
//
// so that a change made through any replica's Manager applies on every
// replica within moments, and one whose notification is lost applies
// no later than the Authenticator's CacheTTL.
//
// Watch holds a connection of its own, made from the pool's config, as
// LISTEN needs one session; when it is lost Watch connects again a second
// later, for as long as ctx lasts. changed is called from Watch's
// goroutine, one call at a time, and should be quick. It returns ctx's
// error once ctx ends, or, if changed panics, the panic as an error,
// rather than take the process down.
func (s *Store) Watch(ctx context.Context, changed func(keyID string)) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cfg := s.pool.Config().ConnConfig
	l := &pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) },
		ReconnectDelay: reconnectDelay,
	}
	l.Handle(Channel, watcher(func(id string) {
		if err := panics.Catch(func() error { changed(id); return nil }); err != nil {
			cancel(fmt.Errorf("auth: watching key changes: %w", err))
		}
	}))
	_ = l.Listen(ctx) // it returns once ctx ends, and only then
	if parent.Err() != nil {
		return parent.Err()
	}
	return context.Cause(ctx)
}

// watcher hands what the listener hears to Watch's callback.
type watcher func(keyID string)

// HandleNotification implements pgxlisten.Handler.
func (w watcher) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	w(n.Payload)
	return nil
}

// HandleBacklog implements pgxlisten.BacklogHandler, which the listener
// calls each time it has connected and listens: the changes made while it
// was away are unknown, so every cached key is.
func (w watcher) HandleBacklog(context.Context, string, *pgx.Conn) error {
	w("")
	return nil
}
