package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatgate/chatgate/shareauth"
)

const linkColumns = `id, team_id, app_id, name, expired_time, qpm, max_usage_points, hook_url,
	response_detail, secret, usage_points, last_used_time, create_time,
	show_node_status, show_complete_quote, show_raw_source, immediate_response, default_response`

// scanLink reads a row of linkColumns.
func scanLink(row pgx.Row) (*shareauth.Link, error) {
	var (
		l                 shareauth.Link
		expired, lastUsed pgtype.Timestamptz
	)
	err := row.Scan(&l.ID, &l.TeamID, &l.AppID, &l.Name, &expired, &l.Limit.QPM, &l.Limit.MaxUsagePoints,
		&l.Limit.HookURL, &l.ResponseDetail, &l.Secret, &l.UsagePoints, &lastUsed, &l.CreateTime,
		&l.ShowNodeStatus, &l.ShowCompleteQuote, &l.ShowRawSource, &l.ImmediateResponse, &l.DefaultResponse)
	if err != nil {
		return nil, err
	}
	l.Limit.ExpiredTime, l.LastUsedTime, l.CreateTime = fromOptional(expired), fromOptional(lastUsed), l.CreateTime.UTC()
	return &l, nil
}

// PutLink implements shareauth.LinkStore.
func (s *Store) PutLink(ctx context.Context, l *shareauth.Link) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO shareauth_links (`+linkColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (id) DO UPDATE SET team_id = excluded.team_id, app_id = excluded.app_id,
			name = excluded.name, expired_time = excluded.expired_time, qpm = excluded.qpm,
			max_usage_points = excluded.max_usage_points, hook_url = excluded.hook_url,
			response_detail = excluded.response_detail, secret = excluded.secret,
			usage_points = excluded.usage_points, last_used_time = excluded.last_used_time,
			create_time = excluded.create_time, show_node_status = excluded.show_node_status,
			show_complete_quote = excluded.show_complete_quote, show_raw_source = excluded.show_raw_source,
			immediate_response = excluded.immediate_response, default_response = excluded.default_response`,
		l.ID, l.TeamID, l.AppID, l.Name, optionalTime(l.Limit.ExpiredTime), l.Limit.QPM, l.Limit.MaxUsagePoints,
		l.Limit.HookURL, l.ResponseDetail, l.Secret, l.UsagePoints, optionalTime(l.LastUsedTime), l.CreateTime,
		l.ShowNodeStatus, l.ShowCompleteQuote, l.ShowRawSource, l.ImmediateResponse, l.DefaultResponse)
	if err != nil {
		return fail("put link "+l.ID, err)
	}
	return nil
}

// Link implements shareauth.LinkStore: one indexed read, as every
// visitor's question asks it.
func (s *Store) Link(ctx context.Context, id string) (*shareauth.Link, error) {
	l, err := scanLink(s.pool.QueryRow(ctx, `SELECT `+linkColumns+` FROM shareauth_links WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, shareauth.ErrLinkNotFound
	}
	if err != nil {
		return nil, fail("link "+id, err)
	}
	return l, nil
}

// Links implements shareauth.LinkStore.
func (s *Store) Links(ctx context.Context, teamID, appID string) ([]*shareauth.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+linkColumns+` FROM shareauth_links
		WHERE team_id = $1 AND ($2 = '' OR app_id = $2) ORDER BY create_time, id`, teamID, appID)
	if err != nil {
		return nil, fail("links of team "+teamID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*shareauth.Link, error) { return scanLink(r) })
	if err != nil {
		return nil, fail("links of team "+teamID, err)
	}
	return out, nil
}

// DeleteLink implements shareauth.LinkStore. The link and its callbacks
// go in one statement, hence one transaction: no replica sees the link
// gone and its callbacks still queued, nor the reverse.
func (s *Store) DeleteLink(ctx context.Context, id string) error {
	var n int
	err := s.pool.QueryRow(ctx, `WITH l AS (DELETE FROM shareauth_links WHERE id = $1 RETURNING id),
		d AS (DELETE FROM shareauth_deliveries WHERE share_id IN (SELECT id FROM l))
		SELECT count(*) FROM l`, id).Scan(&n)
	if err != nil {
		return fail("delete link "+id, err)
	}
	if n == 0 {
		return shareauth.ErrLinkNotFound
	}
	return nil
}

// AddUsage implements shareauth.LinkStore. The update is one statement
// on the row, which Postgres locks, so that charges made at once on
// several replicas all add up and the last use only moves forward.
func (s *Store) AddUsage(ctx context.Context, id string, points float64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE shareauth_links SET usage_points = usage_points + $2,
		last_used_time = GREATEST(last_used_time, $3) WHERE id = $1`, id, points, optionalTime(at))
	if err != nil {
		return fail("usage of link "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return shareauth.ErrLinkNotFound
	}
	return nil
}

// AllLinks implements shareauth.LinkLister.
func (s *Store) AllLinks(ctx context.Context) ([]*shareauth.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+linkColumns+` FROM shareauth_links ORDER BY create_time, id`)
	if err == nil {
		var out []*shareauth.Link
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*shareauth.Link, error) { return scanLink(r) }); err == nil {
			return out, nil
		}
	}
	return nil, fail("list links", err)
}
