package pgstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatgate/chatgate/chat"
)

// convDoc is what a conversation keeps beyond its columns.
type convDoc struct {
	Title      string         `json:"title"`
	Variables  map[string]any `json:"variables,omitempty"`
	KeyID      string         `json:"keyId,omitempty"`
	ShareID    string         `json:"shareId,omitempty"`
	OutLinkUID string         `json:"outLinkUid,omitempty"`
}

// recordDoc is what a record keeps beyond its columns.
type recordDoc struct {
	DataID       string                `json:"dataId"`
	Obj          string                `json:"obj"`
	Value        string                `json:"value"`
	ResponseData []chat.ModuleResponse `json:"responseData,omitempty"`
	UserGood     string                `json:"userGoodFeedback,omitempty"`
	UserBad      string                `json:"userBadFeedback,omitempty"`
}

// appendTurnSQL upserts the conversation and inserts the turn's records in
// one statement. The upsert holds the conversation's row until the
// statement commits, so a concurrent append to the same chatId, from this
// process or another, waits and then numbers its records after these:
// seqs run 0 to messages-1 without a gap or a repeat. The columns
// updateHistory sets, and the end user, are written only by the insert;
// another end user's conversation is not updated, so no record is
// inserted either.
const appendTurnSQL = `WITH c AS (
	INSERT INTO chat_conversations AS c (team_id, app_id, chat_id, create_time, create_ns, update_time, update_ns, messages, doc,
		top, custom_title, custom_uid, share_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, cardinality($8::timestamptz[]), $10, $12, $13, $14, $15)
	ON CONFLICT (team_id, app_id, chat_id) DO UPDATE SET
		create_time = excluded.create_time, create_ns = excluded.create_ns,
		update_time = excluded.update_time, update_ns = excluded.update_ns,
		messages = c.messages + excluded.messages, doc = excluded.doc
	WHERE c.custom_uid = excluded.custom_uid
	RETURNING id, messages
)
INSERT INTO chat_records (conv_id, seq, time, time_ns, doc, data_id)
SELECT c.id, c.messages - cardinality($8::timestamptz[]) + r.ord - 1, r.time, r.ns, r.doc, r.data_id
FROM c, unnest($8::timestamptz[], $9::smallint[], $11::json[], $16::text[]) WITH ORDINALITY AS r(time, ns, doc, data_id, ord)`

// AppendTurn implements chat.HistoryStore.
func (s *Store) AppendTurn(ctx context.Context, c *chat.Conversation, recs []chat.Record) error {
	doc, err := json.Marshal(convDoc{Title: c.Title, Variables: c.Variables, KeyID: c.KeyID, ShareID: c.ShareID, OutLinkUID: c.OutLinkUID})
	if err != nil {
		return fail("encode conversation", err)
	}
	// never nil: a nil slice would be a NULL array, not an empty one
	times, nss, docs := make([]time.Time, len(recs)), make([]int16, len(recs)), make([][]byte, len(recs))
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.DataID
		times[i], nss[i] = split(r.Time)
		if docs[i], err = json.Marshal(recordDoc{DataID: r.DataID, Obj: r.Obj, Value: r.Value, ResponseData: r.ResponseData,
			UserGood: r.UserGoodFeedback, UserBad: r.UserBadFeedback}); err != nil {
			return fail("encode record", err)
		}
	}
	created, createNS := split(c.CreateTime)
	updated, updateNS := split(c.UpdateTime)
	tag, err := s.pool.Exec(ctx, appendTurnSQL, c.TeamID, c.AppID, c.ChatID, created, createNS, updated, updateNS, times, nss, doc, docs,
		c.Top, c.CustomTitle, c.CustomUID, c.ShareID, ids)
	if err != nil {
		return fail("append turn", err)
	}
	if tag.RowsAffected() < int64(len(recs)) {
		return chat.ErrOtherEndUser
	}
	return nil
}

// conversationColumns are what Conversation, Records and Conversations
// read of a conversation, in scanConversation's order.
const conversationColumns = `c.create_time, c.create_ns, c.update_time, c.update_ns, c.messages, c.doc, c.top, c.custom_title, c.custom_uid`

// A conversation's records are read with the conversation in one
// statement, so they are of one snapshot: never a record the count does
// not include. A conversation without records gives one row of NULLs.
const (
	lastRecordsSQL = `SELECT ` + conversationColumns + `, r.seq, r.time, r.time_ns, r.doc
FROM chat_conversations c LEFT JOIN LATERAL (
	SELECT seq, time, time_ns, doc FROM chat_records WHERE conv_id = c.id ORDER BY seq DESC LIMIT $4
) r ON true
WHERE c.team_id = $1 AND c.app_id = $2 AND c.chat_id = $3
ORDER BY r.seq`
	// seqs have no gaps, so the page starts at seq offset, found in the
	// index rather than counted off.
	recordsPageSQL = `SELECT ` + conversationColumns + `, r.seq, r.time, r.time_ns, r.doc
FROM chat_conversations c LEFT JOIN LATERAL (
	SELECT seq, time, time_ns, doc FROM chat_records WHERE conv_id = c.id AND seq >= $4 ORDER BY seq LIMIT $5
) r ON true
WHERE c.team_id = $1 AND c.app_id = $2 AND c.chat_id = $3
ORDER BY r.seq`
)

// Conversation implements chat.HistoryStore.
func (s *Store) Conversation(ctx context.Context, team, app, chatID string, limit int) (*chat.Conversation, []chat.Record, error) {
	return s.load(ctx, "get conversation", lastRecordsSQL, team, app, chatID, limitArg(limit))
}

// Records implements chat.HistoryStore.
func (s *Store) Records(ctx context.Context, team, app, chatID string, offset, limit int) ([]chat.Record, int, error) {
	c, recs, err := s.load(ctx, "list records", recordsPageSQL, team, app, chatID, max(offset, 0), limitArg(limit))
	if err != nil {
		return nil, 0, err
	}
	return recs, c.Messages, nil
}

// load runs one of the statements above: the conversation, or
// ErrChatNotFound, and the records it selects.
func (s *Store) load(ctx context.Context, op, q, team, app, chatID string, page ...any) (*chat.Conversation, []chat.Record, error) {
	rows, err := s.pool.Query(ctx, q, append([]any{team, app, chatID}, page...)...)
	if err != nil {
		return nil, nil, fail(op, err)
	}
	defer rows.Close()
	var (
		c    *chat.Conversation
		recs []chat.Record
		row  conversationRow
		seq  pgtype.Int4
		at   pgtype.Timestamptz
		ns   pgtype.Int2
		doc  []byte
	)
	dest := append(row.dest(), &seq, &at, &ns, &doc)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fail(op, err)
		}
		if c == nil {
			if c, err = row.conversation(team, app, chatID); err != nil {
				return nil, nil, fail(op, err)
			}
			clear(dest[:len(dest)-4]) // the conversation's columns repeat on every row: skip them
		}
		if !seq.Valid {
			continue
		}
		r := chat.Record{Time: join(at.Time, ns.Int16)}
		if err := decodeRecord(doc, &r); err != nil {
			return nil, nil, fail(op, err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fail(op, err)
	}
	if c == nil {
		return nil, nil, chat.ErrChatNotFound
	}
	return c, recs, nil
}

func decodeRecord(doc []byte, r *chat.Record) error {
	var d recordDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return err
	}
	r.DataID, r.Obj, r.Value, r.ResponseData = d.DataID, d.Obj, d.Value, d.ResponseData
	r.UserGoodFeedback, r.UserBadFeedback = d.UserGood, d.UserBad
	return nil
}

// conversationRow receives conversationColumns, NULL in the row
// Conversations reads for a page past the end.
type conversationRow struct {
	created, updated     pgtype.Timestamptz
	createdNS, updatedNS pgtype.Int2
	messages             pgtype.Int4
	doc                  []byte
	top                  pgtype.Bool
	customTitle, uid     pgtype.Text
}

func (r *conversationRow) dest() []any {
	return []any{&r.created, &r.createdNS, &r.updated, &r.updatedNS, &r.messages, &r.doc, &r.top, &r.customTitle, &r.uid}
}

func (r *conversationRow) conversation(team, app, chatID string) (*chat.Conversation, error) {
	var d convDoc
	if err := json.Unmarshal(r.doc, &d); err != nil {
		return nil, err
	}
	return &chat.Conversation{TeamID: team, AppID: app, ChatID: chatID, Title: d.Title, Variables: d.Variables,
		KeyID: d.KeyID, ShareID: d.ShareID, OutLinkUID: d.OutLinkUID,
		CreateTime: join(r.created.Time, r.createdNS.Int16), UpdateTime: join(r.updated.Time, r.updatedNS.Int16), Messages: int(r.messages.Int32),
		Top: r.top.Bool, CustomTitle: r.customTitle.String, CustomUID: r.uid.String}, nil
}

// convFilter is chat.ConversationFilter's Match in SQL, on $3 (customUid)
// and $4 (source).
const convFilter = `team_id = $1 AND app_id = $2 AND ($3 = '' OR custom_uid = $3)
	AND ($4 = '' OR (CASE WHEN share_id <> '' THEN '` + chat.SourceShare + `' ELSE '` + chat.SourceAPI + `' END) = $4)`

// conversationsSQL counts the app's conversations and reads a page of
// them, pinned first, then most recent first, in one statement: the count
// is a row of its own on the left, so it comes even when the page is past
// the end.
const conversationsSQL = `SELECT n.total, c.chat_id, ` + conversationColumns + `
FROM (SELECT count(*) AS total FROM chat_conversations WHERE ` + convFilter + `) n
LEFT JOIN LATERAL (
	SELECT * FROM chat_conversations WHERE ` + convFilter + `
	ORDER BY top DESC, update_time DESC, update_ns DESC, chat_id LIMIT $5 OFFSET $6
) c ON true
ORDER BY c.top DESC, c.update_time DESC, c.update_ns DESC, c.chat_id`

// Conversations implements chat.HistoryStore.
func (s *Store) Conversations(ctx context.Context, team, app string, offset, limit int) ([]chat.Conversation, int, error) {
	return s.SearchConversations(ctx, team, app, chat.ConversationFilter{}, offset, limit)
}

// SearchConversations implements chat.HistorySearcher.
func (s *Store) SearchConversations(ctx context.Context, team, app string, f chat.ConversationFilter, offset, limit int) ([]chat.Conversation, int, error) {
	rows, err := s.pool.Query(ctx, conversationsSQL, team, app, f.CustomUID, f.Source, limitArg(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fail("list conversations", err)
	}
	defer rows.Close()
	var (
		out    []chat.Conversation
		total  int64
		chatID pgtype.Text
		row    conversationRow
	)
	for rows.Next() {
		if err := rows.Scan(append([]any{&total, &chatID}, row.dest()...)...); err != nil {
			return nil, 0, fail("list conversations", err)
		}
		if !chatID.Valid {
			continue
		}
		c, err := row.conversation(team, app, chatID.String)
		if err != nil {
			return nil, 0, fail("list conversations", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fail("list conversations", err)
	}
	return out, int(total), nil
}

// DeleteConversation implements chat.HistoryStore. Its records go with it,
// by the foreign key's cascade.
func (s *Store) DeleteConversation(ctx context.Context, team, app, chatID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chat_conversations WHERE team_id = $1 AND app_id = $2 AND chat_id = $3`, team, app, chatID)
	if err != nil {
		return fail("delete conversation", err)
	}
	if tag.RowsAffected() == 0 {
		return chat.ErrChatNotFound
	}
	return nil
}
