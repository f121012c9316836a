package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// KeyPoints implements billing.SpendReader: each key's slots summed.
func (s *Store) KeyPoints(ctx context.Context) (map[string]float64, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_id, sum(points) FROM billing_key_points GROUP BY key_id`)
	if err != nil {
		return nil, fail("key points", err)
	}
	out := map[string]float64{}
	var (
		key    string
		points float64
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &points}, func() error {
		out[key] = points
		return nil
	})
	if err != nil {
		return nil, fail("key points", err)
	}
	return out, nil
}

// KeyPointsOf implements billing.KeySpendReader: the key's slots summed,
// one indexed read, as a quota counter is rebuilt from it.
func (s *Store) KeyPointsOf(ctx context.Context, keyID string) (float64, error) {
	var p float64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(points), 0) FROM billing_key_points WHERE key_id = $1`, keyID).Scan(&p)
	if err != nil {
		return 0, fail("points of key "+keyID, err)
	}
	return p, nil
}

// AppPoints implements billing.SpendReader: the app's slots summed, one
// indexed read, as a budget check asks it before work.
func (s *Store) AppPoints(ctx context.Context, teamID, appID string) (float64, error) {
	var p float64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(points), 0) FROM billing_app_points
		WHERE team_id = $1 AND app_id = $2`, teamID, appID).Scan(&p)
	if err != nil {
		return 0, fail("points of app "+appID, err)
	}
	return p, nil
}
