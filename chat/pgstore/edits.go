package pgstore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatgate/chatgate/chat"
)

var (
	_ chat.HistorySearcher = (*Store)(nil)
	_ chat.HistoryEditor   = (*Store)(nil)
)

// recordSQL reads the first record with a dataId, and whether the
// conversation exists: no row is no conversation, a row of NULLs no record.
const recordSQL = `SELECT r.time, r.time_ns, r.doc
FROM chat_conversations c LEFT JOIN LATERAL (
	SELECT time, time_ns, doc FROM chat_records WHERE conv_id = c.id AND data_id = $4 ORDER BY seq LIMIT 1
) r ON true
WHERE c.team_id = $1 AND c.app_id = $2 AND c.chat_id = $3`

// Record implements chat.HistorySearcher.
func (s *Store) Record(ctx context.Context, team, app, chatID, dataID string) (*chat.Record, error) {
	var (
		at  pgtype.Timestamptz
		ns  pgtype.Int2
		doc []byte
	)
	err := s.pool.QueryRow(ctx, recordSQL, team, app, chatID, dataID).Scan(&at, &ns, &doc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, chat.ErrChatNotFound
	case err != nil:
		return nil, fail("get record", err)
	case doc == nil:
		return nil, chat.ErrRecordNotFound
	}
	r := &chat.Record{Time: join(at.Time, ns.Int16)}
	if err := decodeRecord(doc, r); err != nil {
		return nil, fail("get record", err)
	}
	return r, nil
}

// UpdateConversation implements chat.HistoryEditor.
func (s *Store) UpdateConversation(ctx context.Context, team, app, chatID string, u chat.ConversationUpdate) error {
	tag, err := s.pool.Exec(ctx, `UPDATE chat_conversations SET top = coalesce($4::boolean, top), custom_title = coalesce($5::text, custom_title)
WHERE team_id = $1 AND app_id = $2 AND chat_id = $3`, team, app, chatID, u.Top, u.CustomTitle)
	if err != nil {
		return fail("update conversation", err)
	}
	if tag.RowsAffected() == 0 {
		return chat.ErrChatNotFound
	}
	return nil
}

// DeleteConversations implements chat.HistoryEditor. Records go with
// their conversations, by the foreign key's cascade.
func (s *Store) DeleteConversations(ctx context.Context, team, app string, f chat.ConversationFilter) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chat_conversations WHERE `+convFilter, team, app, f.CustomUID, f.Source)
	if err != nil {
		return 0, fail("delete conversations", err)
	}
	return int(tag.RowsAffected()), nil
}

// lockConversation returns the id of a conversation, holding its row
// until tx ends, so that no turn is appended meanwhile; or ErrChatNotFound.
func lockConversation(ctx context.Context, tx pgx.Tx, team, app, chatID string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM chat_conversations WHERE team_id = $1 AND app_id = $2 AND chat_id = $3 FOR UPDATE`,
		team, app, chatID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, chat.ErrChatNotFound
	}
	return id, err
}

// inTx runs fn in a transaction, committed when fn succeeds.
func (s *Store) inTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(op, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		if errors.Is(err, chat.ErrChatNotFound) || errors.Is(err, chat.ErrRecordNotFound) {
			return err
		}
		return fail(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(op, err)
	}
	return nil
}

// renumberSQL closes the gaps a delete left in a conversation's seqs, so
// that they run 0 to messages-1 again, as AppendTurn and Records count on.
// The primary key is checked row by row, so the records first move to
// negative seqs of their own and then to their places.
const renumberSQL = `UPDATE chat_records r SET seq = -n.rn
FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM chat_records WHERE conv_id = $1) n
WHERE r.conv_id = $1 AND r.seq = n.seq AND r.seq <> n.rn - 1`

// DeleteRecord implements chat.HistoryEditor.
func (s *Store) DeleteRecord(ctx context.Context, team, app, chatID, dataID string) error {
	return s.inTx(ctx, "delete record", func(tx pgx.Tx) error {
		id, err := lockConversation(ctx, tx, team, app, chatID)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM chat_records WHERE conv_id = $1 AND data_id = $2`, id, dataID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return chat.ErrRecordNotFound
		}
		if _, err := tx.Exec(ctx, renumberSQL, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE chat_records SET seq = -seq - 1 WHERE conv_id = $1 AND seq < 0`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE chat_conversations SET messages = messages - $2 WHERE id = $1`, id, tag.RowsAffected())
		return err
	})
}

// SetFeedback implements chat.HistoryEditor. The feedback is in the
// record's doc, which is json kept verbatim (jsonb would refuse a NUL a
// message may hold), so it is rewritten from Go.
func (s *Store) SetFeedback(ctx context.Context, team, app, chatID, dataID string, fb chat.Feedback) error {
	return s.inTx(ctx, "set feedback", func(tx pgx.Tx) error {
		id, err := lockConversation(ctx, tx, team, app, chatID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, doc FROM chat_records WHERE conv_id = $1 AND data_id = $2`, id, dataID)
		if err != nil {
			return err
		}
		type found struct {
			seq int32
			doc []byte
		}
		var fs []found
		for rows.Next() {
			var f found
			if err := rows.Scan(&f.seq, &f.doc); err != nil {
				rows.Close()
				return err
			}
			fs = append(fs, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(fs) == 0 {
			return chat.ErrRecordNotFound
		}
		for _, f := range fs {
			var d recordDoc
			if err := json.Unmarshal(f.doc, &d); err != nil {
				return err
			}
			d.UserGood, d.UserBad = fb.Good, fb.Bad
			doc, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE chat_records SET doc = $3 WHERE conv_id = $1 AND seq = $2`, id, f.seq, doc); err != nil {
				return err
			}
		}
		return nil
	})
}
