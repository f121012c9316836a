package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/chatgate/chatgate/dataset"
)

// The change feed. Every transaction that changes data writes a row per
// item to dataset_changes, stamped with its transaction id (xid8, from
// pg_current_xact_id()), and notifies Channel.
//
// Why the reader never skips a row: sequence values and transaction ids
// are handed out as transactions run, not as they commit, so a reader
// that took rows by seq as they appear could read seq 11, committed,
// while seq 10's transaction is still open, and, moving past 11, never
// see 10. So a reader only takes rows whose xid is below the xmin of its
// statement's snapshot (pg_snapshot_xmin(pg_current_snapshot())): every
// transaction below xmin has ended, so it sees all the rows they will
// ever write, and each transaction still open, or yet to begin, has an
// xid of xmin or above. It takes them in (xid, seq) order, and its cursor
// is the last (xid, seq) it took: every row written later sorts after it.
// The order is that of transaction ids, not of commits; it need not be
// commit order, because a change is read with its item's current state
// (dataset.ChangeFeed). What this costs is lag: a row waits until every
// transaction older than its own has ended (Held tells the reader to look
// again soon), which in chatgate, whose transactions are short, is a few
// milliseconds.

// Channel is the notification channel of the change feed. Channels belong
// to the database, not to a schema: the payload names the schema of the
// tables changed, and a listener heeds only its own.
const Channel = "chatgate_dataset_changes"

// notifySQL tells the listeners once the transaction commits.
const notifySQL = `SELECT pg_notify('` + Channel + `', current_schema())`

// pruneEvery is how often a store deletes the changes older than its
// retention, when it reads the feed.
const pruneEvery = time.Minute

// cursor is a position in the feed: the last (xid, seq) read.
type cursor struct {
	xid uint64
	seq int64
}

func (c cursor) String() dataset.ChangeCursor {
	return dataset.ChangeCursor(strconv.FormatUint(c.xid, 10) + ":" + strconv.FormatInt(c.seq, 10))
}

func parseCursor(s dataset.ChangeCursor) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	x, q, ok := strings.Cut(string(s), ":")
	xid, err1 := strconv.ParseUint(x, 10, 64)
	seq, err2 := strconv.ParseInt(q, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return cursor{}, fmt.Errorf("dataset: %q is not a change cursor of this store", s)
	}
	return cursor{xid, seq}, nil
}

// SnapshotChanges implements dataset.ChangeFeed: one repeatable-read
// transaction reads every data item with its vectors, and the cursor is
// the xmin of its snapshot, before every change it may have missed.
func (s *Store) SnapshotChanges(ctx context.Context, fn func(dataset.Change) error) (dataset.ChangeCursor, error) {
	var at cursor
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())`).Scan(&at.xid); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT d.id, d.dataset_id, d.doc, v.id, v.vec
			FROM dataset_data d LEFT JOIN dataset_vectors v ON v.data_id = d.id ORDER BY d.id, v.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			c        dataset.Change
			id, ds   string
			vid      *string
			doc, vec []byte
		)
		flush := func() error {
			if c.DataID == "" {
				return nil
			}
			return fn(c)
		}
		for rows.Next() {
			if err := rows.Scan(&id, &ds, &doc, &vid, &vec); err != nil {
				return err
			}
			if id != c.DataID {
				if err := flush(); err != nil {
					return err
				}
				d, err := scanData(doc)
				if err != nil {
					return err
				}
				c = dataset.Change{DatasetID: ds, DataID: id, Data: d}
			}
			if vid != nil {
				c.Vectors = append(c.Vectors, dataset.Vector{ID: *vid, Values: decodeVector(vec)})
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return "", fail("snapshot of the data", err)
	}
	return at.String(), nil
}

// changesSQL reads a page of the feed after ($1, $2), up to $3 changes,
// each with its item's current doc and vectors, and whether changes are
// held behind an open transaction or were pruned past the cursor. It
// always returns a row: with no change, its change columns are NULL.
const changesSQL = `WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
	page AS (SELECT c.xid, c.seq, c.dataset_id, c.data_id, c.removed FROM dataset_changes c, s
		WHERE (c.xid, c.seq) > ($1::xid8, $2::bigint) AND c.xid < s.xmin
		ORDER BY c.xid, c.seq LIMIT $3)
	SELECT EXISTS (SELECT 1 FROM dataset_changes c, s WHERE c.xid >= s.xmin),
		(SELECT (h.xid, h.seq) > ($1::xid8, $2::bigint) FROM dataset_changes_horizon h),
		p.xid, p.seq, p.dataset_id, p.data_id, p.removed, d.doc, vv.ids, vv.vecs
	FROM s LEFT JOIN page p ON true
	LEFT JOIN dataset_data d ON d.id = p.data_id
	LEFT JOIN LATERAL (SELECT array_agg(v.id ORDER BY v.id) AS ids, array_agg(v.vec ORDER BY v.id) AS vecs
		FROM dataset_vectors v WHERE v.data_id = d.id) vv ON true
	ORDER BY p.xid, p.seq`

// Changes implements dataset.ChangeFeed in one statement. Once a minute
// it first deletes the changes older than Options.FeedRetention.
func (s *Store) Changes(ctx context.Context, after dataset.ChangeCursor, n int) (dataset.ChangePage, error) {
	from, err := parseCursor(after)
	if err != nil {
		return dataset.ChangePage{}, err
	}
	if err := s.prune(ctx); err != nil {
		return dataset.ChangePage{}, fail("pruning the change feed", err)
	}
	page := dataset.ChangePage{Next: after}
	rows, err := s.pool.Query(ctx, changesSQL, from.xid, from.seq, max(n, 1))
	if err != nil {
		return dataset.ChangePage{}, fail("reading the change feed", err)
	}
	defer rows.Close()
	var (
		xid             *uint64
		seq             *int64
		set, id         *string
		removed, vidsOf []string
		doc             []byte
		vecs            [][]byte
	)
	for rows.Next() {
		if err := rows.Scan(&page.Held, &page.Reset, &xid, &seq, &set, &id, &removed, &doc, &vidsOf, &vecs); err != nil {
			return dataset.ChangePage{}, fail("reading the change feed", err)
		}
		if seq == nil || page.Reset {
			continue
		}
		c := dataset.Change{DatasetID: *set, Removed: removed}
		if id != nil {
			c.DataID = *id
		}
		if doc != nil {
			if c.Data, err = scanData(doc); err != nil {
				return dataset.ChangePage{}, fail("reading the change feed", err)
			}
			c.Vectors = make([]dataset.Vector, len(vidsOf))
			for i, vid := range vidsOf {
				c.Vectors[i] = dataset.Vector{ID: vid, Values: decodeVector(vecs[i])}
			}
		}
		page.Changes = append(page.Changes, c)
		page.Next = cursor{*xid, *seq}.String()
		removed, doc, vidsOf, vecs = nil, nil, nil, nil
	}
	if err := rows.Err(); err != nil {
		return dataset.ChangePage{}, fail("reading the change feed", err)
	}
	if page.Reset {
		page.Changes, page.Next = nil, after
	}
	return page, nil
}

// prune deletes the changes older than the retention, at most once every
// pruneEvery per store, and moves the horizon past them, so that a reader
// still behind it learns that it missed some.
func (s *Store) prune(ctx context.Context) error {
	last := s.pruned.Load()
	now := time.Now().UnixNano()
	if now-last < int64(pruneEvery) || !s.pruned.CompareAndSwap(last, now) {
		return nil
	}
	_, err := s.pool.Exec(ctx, `WITH d AS (DELETE FROM dataset_changes WHERE at < now() - $1 * interval '1 microsecond'
			RETURNING xid, seq),
		m AS (SELECT xid, seq FROM d ORDER BY xid DESC, seq DESC LIMIT 1)
		UPDATE dataset_changes_horizon h SET xid = m.xid, seq = m.seq FROM m WHERE (m.xid, m.seq) > (h.xid, h.seq)`,
		s.retention.Microseconds())
	return err
}

// ListenChanges implements dataset.ChangeFeed with LISTEN on a connection
// of its own, made from the pool's config and made again a second after
// it is lost, for as long as ctx lasts.
func (s *Store) ListenChanges(ctx context.Context, wake chan<- struct{}) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	l := &pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) },
		ReconnectDelay: time.Second,
	}
	l.Handle(Channel, &listener{wake: wake})
	_ = l.Listen(ctx) // returns once ctx ends, and only then
	return ctx.Err()
}

// listener wakes the reader for each notification about its schema.
type listener struct {
	wake   chan<- struct{}
	schema string // learnt at each connection; the Listener calls one method at a time
}

func (l *listener) poke() {
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// HandleBacklog implements pgxlisten.BacklogHandler, which the Listener
// calls once it listens on a new connection: what was notified before is
// lost, so the reader looks.
func (l *listener) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&l.schema); err != nil {
		return err
	}
	l.poke()
	return nil
}

// HandleNotification implements pgxlisten.Handler.
func (l *listener) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if n.Payload == l.schema {
		l.poke()
	}
	return nil
}
