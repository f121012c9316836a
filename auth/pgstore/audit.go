package pgstore

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatgate/chatgate/auth"
)

// AppendAudit implements auth.AuditWriter: evs in one statement, so they
// are all written or none.
func (s *Store) AppendAudit(ctx context.Context, evs []auth.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	if err := appendAudit(ctx, s.pool, evs); err != nil {
		return fail("append audit events", err)
	}
	return nil
}

// appendAudit inserts evs, each drawing its Seq from the identity in
// slice order. Seqs are drawn as the rows are inserted, not as they
// commit, so events appended at once by several replicas are in one total
// order but may become visible out of it: a reader may see seq 12 before
// seq 11 commits. Audit and TrimAudit only rank events by seq and never
// take the highest seq seen as a mark of what has been read.
func appendAudit(ctx context.Context, db execer, evs []auth.AuditEvent) error {
	n := len(evs)
	times, counts := make([]time.Time, n), make([]int64, n)
	var text [7][]string // action, key_id, hint, team_id, actor_key_id, reason, remote_ip
	for c := range text {
		text[c] = make([]string, n)
	}
	for i, e := range evs {
		times[i], counts[i] = e.Time, int64(e.Count)
		for c, v := range [...]string{string(e.Action), e.KeyID, e.Hint, e.TeamID, e.ActorKeyID, e.Reason, e.RemoteIP} {
			text[c][i] = v
		}
	}
	_, err := db.Exec(ctx, `INSERT INTO auth_audit (time, action, key_id, hint, team_id, actor_key_id, reason, remote_ip, count)
		SELECT e.time, e.action, e.key_id, e.hint, e.team_id, e.actor_key_id, e.reason, e.remote_ip, e.count
		FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::bigint[]) WITH ORDINALITY
			AS e(time, action, key_id, hint, team_id, actor_key_id, reason, remote_ip, count, n)
		ORDER BY e.n`, times, text[0], text[1], text[2], text[3], text[4], text[5], text[6], counts)
	return err
}

// Audit implements auth.AuditReader: newest first by seq, reading no
// further than the limit along the index of what q names (a team's, a
// key's, or the whole trail's).
func (s *Store) Audit(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100 // as auth.AuditQuery documents
	}
	cond, args := where("team_id", q.TeamID, "key_id", q.KeyID, "action", string(q.Action))
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT seq, time, action, key_id, hint, team_id, actor_key_id, reason, remote_ip, count
		FROM auth_audit`+cond+` ORDER BY seq DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fail("audit", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.AuditEvent, error) {
		var e auth.AuditEvent
		err := r.Scan(&e.Seq, &e.Time, &e.Action, &e.KeyID, &e.Hint, &e.TeamID, &e.ActorKeyID, &e.Reason, &e.RemoteIP, &e.Count)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, fail("audit", err)
	}
	return evs, nil
}

// trimBatch bounds how many events one statement of TrimAudit removes,
// so that trimming a long trail is many short transactions, not one that
// holds its rows and grows the WAL for long.
const trimBatch = 10_000

// TrimAudit implements auth.AuditTrimmer. It first fixes, in one
// statement, the seq below which events go: the lowest of an event not
// older than before (past the newest when every event is), or that of the
// newest keep-th event, whichever is higher. Then it removes the events
// below it in batches. Being a seq, the bound leaves alone what other
// replicas append meanwhile, whatever order their events commit in.
func (s *Store) TrimAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	var cut pgtype.Int8
	err := s.pool.QueryRow(ctx, `SELECT GREATEST(
			CASE WHEN $1::timestamptz IS NOT NULL THEN coalesce(
				(SELECT seq FROM auth_audit WHERE time >= $1 ORDER BY seq LIMIT 1),
				(SELECT max(seq) + 1 FROM auth_audit)) END,
			CASE WHEN $2 > 0 THEN (SELECT seq FROM auth_audit ORDER BY seq DESC OFFSET $2 - 1 LIMIT 1) END)`,
		never(before), keep).Scan(&cut)
	if err != nil {
		return 0, fail("trim audit", err)
	}
	total := 0
	for cut.Valid {
		tag, err := s.pool.Exec(ctx, `DELETE FROM auth_audit WHERE seq IN
			(SELECT seq FROM auth_audit WHERE seq < $1 ORDER BY seq LIMIT $2)`, cut.Int64, trimBatch)
		if err != nil {
			return total, fail("trim audit", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < trimBatch {
			break
		}
	}
	return total, nil
}
