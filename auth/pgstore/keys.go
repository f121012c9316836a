package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatgate/chatgate/auth"
)

const keyColumns = `k.id, k.name, k.team_id, k.app_id, k.scopes, k.expired_time, k.max_usage_points, k.rpm,
	k.allowed_ips, k.disabled, k.source, k.hash, k.hint, k.retired_hashes, k.retired_until,
	k.create_time, k.update_time, k.meta, k.usage_points, k.last_used_time`

// hashDest scans a bytea into a Hash in place, sparing the hot path the
// slice a []byte destination would allocate.
type hashDest auth.Hash

// ScanBytes implements pgtype.BytesScanner.
func (h *hashDest) ScanBytes(b []byte) error {
	if len(b) != len(h) {
		return fmt.Errorf("a stored hash of %d bytes, not %d", len(b), len(h))
	}
	copy(h[:], b)
	return nil
}

// scanKey reads a row of keyColumns.
func scanKey(row pgx.Row) (*auth.Key, error) {
	var (
		k                 auth.Key
		expired, lastUsed pgtype.Timestamptz
		retired           []hashDest
		until             []time.Time
	)
	err := row.Scan(&k.ID, &k.Name, &k.TeamID, &k.AppID, &k.Scopes, &expired, &k.Limit.MaxUsagePoints, &k.Limit.RPM,
		&k.AllowedIPs, &k.Disabled, &k.Source, (*hashDest)(&k.Hash), &k.Hint, &retired, &until,
		&k.CreateTime, &k.UpdateTime, &k.Meta, &k.UsagePoints, &lastUsed)
	if err != nil {
		return nil, err
	}
	if len(retired) != len(until) {
		return nil, fmt.Errorf("key %s has %d retired hashes and %d ends of grace", k.ID, len(retired), len(until))
	}
	if len(retired) > 0 {
		k.Retired = make([]auth.RetiredHash, len(retired))
		for i := range retired {
			k.Retired[i] = auth.RetiredHash{Hash: auth.Hash(retired[i]), Until: until[i].UTC()}
		}
	}
	if len(k.AllowedIPs) == 0 {
		k.AllowedIPs = nil
	}
	k.Limit.ExpiredTime, k.LastUsedTime = instant(expired), instant(lastUsed)
	k.CreateTime, k.UpdateTime = k.CreateTime.UTC(), k.UpdateTime.UTC()
	return &k, nil
}

// keyArgs are k's stored fields in the order of the INSERT in Create,
// $1 the id; usage is not among them.
func keyArgs(k *auth.Key) []any {
	retired := make([][]byte, len(k.Retired))
	until := make([]time.Time, len(k.Retired))
	for i, r := range k.Retired {
		retired[i], until[i] = r.Hash[:], r.Until
	}
	var meta any // NULL for none
	if len(k.Meta) > 0 {
		meta = k.Meta
	}
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = string(sc)
	}
	ips := k.AllowedIPs
	if ips == nil {
		ips = []netip.Prefix{}
	}
	return []any{k.ID, k.Name, k.TeamID, k.AppID, scopes, never(k.Limit.ExpiredTime), k.Limit.MaxUsagePoints,
		k.Limit.RPM, ips, k.Disabled, string(k.Source), k.Hash[:], k.Hint, retired, until,
		k.CreateTime, k.UpdateTime, meta}
}

// Create implements auth.KeyWriter.
func (s *Store) Create(ctx context.Context, k *auth.Key, ev *auth.AuditEvent) error {
	return s.change(ctx, "create key "+k.ID, k.ID, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO auth_keys (id, name, team_id, app_id, scopes, expired_time,
				max_usage_points, rpm, allowed_ips, disabled, source, hash, hint, retired_hashes, retired_until,
				create_time, update_time, meta)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT (id) DO NOTHING`, keyArgs(k)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return auth.ErrKeyExists
		}
		return claimHashes(ctx, tx, k)
	})
}

// Update implements auth.KeyWriter. The usage columns are left out, so
// usage added meanwhile by any replica stays.
func (s *Store) Update(ctx context.Context, k *auth.Key, ev *auth.AuditEvent) error {
	return s.change(ctx, "update key "+k.ID, k.ID, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth_keys SET name = $2, team_id = $3, app_id = $4, scopes = $5,
				expired_time = $6, max_usage_points = $7, rpm = $8, allowed_ips = $9, disabled = $10, source = $11,
				hash = $12, hint = $13, retired_hashes = $14, retired_until = $15, create_time = $16,
				update_time = $17, meta = $18
			WHERE id = $1`, keyArgs(k)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return auth.ErrKeyNotFound
		}
		return claimHashes(ctx, tx, k)
	})
}

// claimHashes points k's hashes at k and drops those of its hashes it no
// longer has, failing with ErrHashInUse when one is another key's. The
// insert waits for a concurrent transaction writing the same hash, and
// the check after it, a statement of its own, reads what that one
// committed: of two keys given one value at once, one gets it.
func claimHashes(ctx context.Context, tx pgx.Tx, k *auth.Key) error {
	hs := make([][]byte, 0, 1+len(k.Retired))
	hs = append(hs, k.Hash[:])
	for _, r := range k.Retired {
		hs = append(hs, r.Hash[:])
	}
	if _, err := tx.Exec(ctx, `DELETE FROM auth_key_hashes WHERE key_id = $1 AND hash <> ALL($2)`, k.ID, hs); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO auth_key_hashes (hash, key_id)
		SELECT DISTINCT h, $1 FROM unnest($2::bytea[]) h ORDER BY h
		ON CONFLICT (hash) DO NOTHING`, k.ID, hs); err != nil {
		return err
	}
	var taken bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth_key_hashes WHERE hash = ANY($2) AND key_id <> $1)`,
		k.ID, hs).Scan(&taken)
	if err == nil && taken {
		err = auth.ErrHashInUse
	}
	return err
}

// Delete implements auth.KeyWriter: the key's hashes go with its row.
func (s *Store) Delete(ctx context.Context, id string, ev *auth.AuditEvent) error {
	return s.change(ctx, "delete key "+id, id, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM auth_keys WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = auth.ErrKeyNotFound
		}
		return err
	})
}

// change runs write, then appends ev and notifies Channel of key id, in
// one transaction: the trail records the changes that happened, and
// replicas hear of a change once it is there to read.
func (s *Store) change(ctx context.Context, op, id string, ev *auth.AuditEvent, write func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		if ev != nil {
			if err := appendAudit(ctx, tx, []auth.AuditEvent{*ev}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, id)
		return err
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrKeyExists), errors.Is(err, auth.ErrKeyNotFound), errors.Is(err, auth.ErrHashInUse):
		return err
	}
	return fail(op, err)
}

// Get implements auth.KeyReader.
func (s *Store) Get(ctx context.Context, id string) (*auth.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM auth_keys k WHERE k.id = $1`, id))
	return found(k, err, "key "+id)
}

// GetByHash implements auth.KeyReader: one statement, a probe of each of
// two primary keys, as every request whose key is not cached asks it.
func (s *Store) GetByHash(ctx context.Context, h auth.Hash) (*auth.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+`
		FROM auth_key_hashes h JOIN auth_keys k ON k.id = h.key_id WHERE h.hash = $1`, h[:]))
	return found(k, err, "key by hash")
}

// found is the answer of a read of one key.
func found(k *auth.Key, err error, what string) (*auth.Key, error) {
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, auth.ErrKeyNotFound
	}
	return nil, fail(what, err)
}

// List implements auth.KeyLister.
func (s *Store) List(ctx context.Context, f auth.Filter) ([]*auth.Key, error) {
	cond, args := where("k.team_id", f.TeamID, "k.app_id", f.AppID, "k.source", string(f.Source))
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM auth_keys k`+cond+` ORDER BY k.create_time, k.id`, args...)
	if err != nil {
		return nil, fail("list keys", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*auth.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fail("list keys", err)
	}
	return ks, nil
}

// AddUsage implements auth.UsageWriter. It is additive and atomic across
// replicas: the rows are locked in id order first, so that replicas
// flushing overlapping keys at once queue rather than deadlock, then one
// UPDATE adds each key's points and raises its last use, never lowering
// it. Both statements go in one round trip, as one implicit transaction.
func (s *Store) AddUsage(ctx context.Context, us []auth.Usage) error {
	if len(us) == 0 {
		return nil
	}
	ids := make([]string, len(us))
	points := make([]float64, len(us))
	last := make([]pgtype.Timestamptz, len(us))
	for i, u := range us {
		ids[i], points[i], last[i] = u.KeyID, u.Points, pgtype.Timestamptz{Time: u.LastUsed, Valid: !u.LastUsed.IsZero()}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT id FROM auth_keys WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	b.Queue(`UPDATE auth_keys k SET usage_points = k.usage_points + u.points,
			last_used_time = GREATEST(k.last_used_time, u.last_used)
		FROM (SELECT id, sum(points) AS points, max(last_used) AS last_used
			FROM unnest($1::text[], $2::float8[], $3::timestamptz[]) AS t(id, points, last_used) GROUP BY id) u
		WHERE k.id = u.id`, ids, points, last)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fail(fmt.Sprintf("usage of %d keys", len(us)), err)
	}
	return nil
}
