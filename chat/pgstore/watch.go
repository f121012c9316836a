package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/chatgate/chatgate/internal/panics"
)

// AppsChannel is the notification channel of app changes: a trigger on the
// apps table notifies it in the changing transaction, whatever made the
// change, with ["schema","team","id"] as payload (["schema"] for a
// TRUNCATE). Channels belong to the database, not to a schema: a store
// ignores the changes of the other schemas' apps.
const AppsChannel = "chatgate_chat_apps"

// WatchedAppTTL bounds how long an app read while Watch listens is kept
// without reading it again: it covers a change whose notification is lost
// on a connection that died without Watch noticing yet.
const WatchedAppTTL = 10 * time.Second

// watchReconnect is how long Watch waits to connect again after its
// connection is lost or could not be made.
const watchReconnect = time.Second

// watchedAppsMax bounds the apps kept; past it the memory starts over.
const watchedAppsMax = 4096

// watched is what a Store knows of its apps while Watch listens. Without a
// listener it keeps nothing, and every read goes to the database.
type watched struct {
	mu        sync.Mutex
	listening int    // Watch calls connected and listening
	gen       uint64 // moves with every change heard, local write, connect and loss
	apps      map[string]watchedApp
}

type watchedApp struct {
	raw []byte // the row's bytes; Store.apps has them decoded
	at  time.Time
}

// get returns the bytes of the app kept under key, when they may be used.
func (w *watched) get(key string, now time.Time) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.apps[key]
	if !ok || w.listening == 0 || now.Sub(e.at) >= WatchedAppTTL {
		return nil, false
	}
	return e.raw, true
}

// generation is taken before a read from the database, to be given to put.
func (w *watched) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// put keeps raw, read under key at at, unless something changed (or the
// listener came or went) since gen was taken: the read may predate a
// change already heard, and must not outlive it.
func (w *watched) put(key string, raw []byte, gen uint64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.listening == 0 || w.gen != gen {
		return
	}
	if w.apps == nil || len(w.apps) >= watchedAppsMax {
		w.apps = map[string]watchedApp{}
	}
	w.apps[key] = watchedApp{raw: raw, at: at}
}

// forget drops the app under key ("": every app).
func (w *watched) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	if key == "" {
		w.apps = nil
	} else {
		delete(w.apps, key)
	}
}

// listen records that a Watch connected (up) or lost its connection: what
// was kept is no longer known to be current either way.
func (w *watched) listen(up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if up {
		w.listening++
	} else {
		w.listening--
	}
	w.gen++
	w.apps = nil
}

// Watch listens on AppsChannel until ctx ends. While it listens, the
// Store keeps the apps it reads, and a change made anywhere (through
// another replica's Store, or in SQL) drops the changed app once its
// notification arrives, moments after the change commits; a change
// through this Store applies to it at once. Without Watch, a Store keeps
// nothing and reads every app from the database. An app is kept at most
// WatchedAppTTL, which bounds what a notification lost unnoticed costs.
//
// Watch holds a connection of its own, made from the pool's config (its
// BeforeConnect and AfterConnect hooks are not run), as LISTEN needs one
// session: behind a pooler that shares sessions between transactions
// (PgBouncer in transaction mode) notifications do not arrive, and every
// change waits out WatchedAppTTL. When the connection is lost the Store
// stops keeping apps, and Watch connects again a second later, for as
// long as ctx lasts. It returns ctx's error once ctx ends, or a panic as
// an error rather than take the process down.
func (s *Store) Watch(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cfg := s.pool.Config().ConnConfig
	h := &appWatcher{w: &s.watched, schema: s.schema, fail: cancel}
	l := &pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) },
		ReconnectDelay: watchReconnect,
		// The listener reports a connection's end only through its error;
		// from then on, notifications may be missed.
		LogError: func(context.Context, error) { h.down() },
	}
	l.Handle(AppsChannel, h)
	// Down however Listen ends, a panic of its own included: a store must
	// not keep apps with no one listening.
	defer h.down()
	_ = l.Listen(ctx) // it returns once ctx ends, and only then
	if parent.Err() != nil {
		return parent.Err()
	}
	return context.Cause(ctx)
}

// appWatcher hands what the listener hears to the Store's watched apps.
// Only the listener's goroutine calls it.
type appWatcher struct {
	w      *watched
	schema string // of the store's apps table
	up     bool
	fail   context.CancelCauseFunc
}

func (h *appWatcher) down() {
	if h.up {
		h.up = false
		h.w.listen(false)
	}
}

// HandleBacklog implements pgxlisten.BacklogHandler, which the listener
// calls each time it has connected and listens.
func (h *appWatcher) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.down() // not expected: a connection's end is reported first
	h.up = true
	h.w.listen(true)
	return nil
}

// HandleNotification implements pgxlisten.Handler.
func (h *appWatcher) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	err := panics.Catch(func() error {
		var k [3]string
		switch {
		case json.Unmarshal([]byte(n.Payload), &k) != nil:
			h.w.forget("") // not the trigger's: whatever changed, it is not kept
		case k[0] != h.schema:
		case k[1] == "" && k[2] == "":
			h.w.forget("") // ["schema"]: the table was truncated
		default:
			h.w.forget(appKey(k[1], k[2]))
		}
		return nil
	})
	if err != nil {
		h.w.forget("")
		h.fail(fmt.Errorf("chat: watching app changes: %w", err))
	}
	return nil
}

// appKey is the key of an app among the watched ones and in Store.apps.
func appKey(team, id string) string { return team + "\x00" + id }
