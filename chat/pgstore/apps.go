package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/chat"
)

// PutApp implements chat.AppStore.
func (s *Store) PutApp(ctx context.Context, a *chat.App) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fail("put app", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO chat_apps (team_id, id, doc) VALUES ($1, $2, $3)
		ON CONFLICT (team_id, id) DO UPDATE SET doc = excluded.doc`, a.TeamID, a.ID, doc)
	// This Store reads its own writes at once, without waiting for the
	// notification; it forgets after the write, and after a failed one,
	// which may have committed all the same.
	s.watched.forget(appKey(a.TeamID, a.ID))
	if err != nil {
		return fail("put app", err)
	}
	return nil
}

// App implements chat.AppStore. While Watch listens, an app read lately
// is not read again until a change to it is heard (see Watch).
func (s *Store) App(ctx context.Context, team, id string) (*chat.App, error) {
	key := appKey(team, id)
	now := time.Now()
	if raw, ok := s.watched.get(key, now); ok {
		if a, ok := s.apps.Get(key, raw); ok {
			return a, nil
		}
	}
	gen := s.watched.generation()
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM chat_apps WHERE team_id = $1 AND id = $2`, team, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, chat.ErrAppNotFound
	}
	if err != nil {
		return nil, fail("get app", err)
	}
	a, ok := s.apps.Get(key, doc)
	if !ok {
		a = new(chat.App)
		if err := json.Unmarshal(doc, a); err != nil {
			return nil, fail("decode app", err)
		}
		s.apps.Put(key, doc, a)
	}
	s.watched.put(key, doc, gen, now)
	return a, nil
}

// Apps implements chat.AppStore.
func (s *Store) Apps(ctx context.Context, team string) ([]*chat.App, error) {
	q, args := `SELECT doc FROM chat_apps ORDER BY id, team_id`, []any(nil)
	if team != "" {
		q, args = `SELECT doc FROM chat_apps WHERE team_id = $1 ORDER BY id`, []any{team}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fail("list apps", err)
	}
	defer rows.Close()
	var out []*chat.App
	var doc []byte
	for rows.Next() {
		if err := rows.Scan(&doc); err != nil {
			return nil, fail("list apps", err)
		}
		a := new(chat.App)
		if err := json.Unmarshal(doc, a); err != nil {
			return nil, fail("decode app", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list apps", err)
	}
	return out, nil
}

// DeleteApp implements chat.AppStore. The app's conversations go in the
// same statement, their records by the foreign key's cascade, so no reader
// sees the app gone and its history left, or the reverse.
func (s *Store) DeleteApp(ctx context.Context, team, id string) error {
	var n int
	err := s.pool.QueryRow(ctx, `WITH a AS (DELETE FROM chat_apps WHERE team_id = $1 AND id = $2 RETURNING 1),
		h AS (DELETE FROM chat_conversations WHERE team_id = $1 AND app_id = $2 AND EXISTS (SELECT FROM a))
		SELECT count(*) FROM a`, team, id).Scan(&n)
	s.watched.forget(appKey(team, id))
	if err != nil {
		return fail("delete app", err)
	}
	if n == 0 {
		return chat.ErrAppNotFound
	}
	return nil
}
