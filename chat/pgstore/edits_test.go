package pgstore_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// History written before the history routes existed (migration 00001
// only) is found by dataId, by source, and is editable once the store
// brings the tables up to date, a NUL in a message notwithstanding.
func TestMigrationKeepsOldHistory(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	first, err := os.ReadFile("migrations/00001_chat.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool, fstest.MapFS{"m/00001_chat.sql": {Data: first}}, "m", "chatgate_chat_migrations"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ chatID, doc string }{
		{"share:link1:u:c", `{"title":"t","shareId":"link1","outLinkUid":"u"}`},
		{"keyed", `{"title":"t","variables":{"shareId":"not a link"},"keyId":"k"}`},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO chat_conversations (team_id, app_id, chat_id, create_time, create_ns, update_time, update_ns, messages, doc)
VALUES ('t', 'app', $1, now(), 0, now(), 0, 2, $2)`, c.chatID, c.doc); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO chat_records (conv_id, seq, time, time_ns, doc)
SELECT id, s.seq, now(), 0, s.doc::json FROM chat_conversations, (VALUES
	(0, '{"dataId":"q1","obj":"Human","value":"a\u0000b"}'), (1, '{"dataId":"a1","obj":"AI","value":"x"}')) AS s(seq, doc)
WHERE chat_id = $1`, c.chatID); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, pool) // 00002 and on
	for _, chatID := range []string{"share:link1:u:c", "keyed"} {
		if r, err := s.Record(ctx, "t", "app", chatID, "q1"); err != nil || r.Value != "a\x00b" {
			t.Fatalf("%s's q1: %+v %v", chatID, r, err)
		}
	}
	for src, want := range map[string]string{chat.SourceShare: "share:link1:u:c", chat.SourceAPI: "keyed"} {
		got, total, err := s.SearchConversations(ctx, "t", "app", chat.ConversationFilter{Source: src}, 0, 0)
		if err != nil || total != 1 || got[0].ChatID != want {
			t.Fatalf("source %s: %+v %d %v", src, got, total, err)
		}
	}
	if err := s.DeleteRecord(ctx, "t", "app", "keyed", "q1"); err != nil {
		t.Fatal(err)
	}
	if recs, total, err := s.Records(ctx, "t", "app", "keyed", 0, 0); err != nil || total != 1 || recs[0].DataID != "a1" {
		t.Fatalf("after deleting q1: %+v %d %v", recs, total, err)
	}
}

// Deleting records keeps a conversation's seqs 0 to messages-1, and
// deleting conversations leaves no record of theirs behind.
func TestEditsLeaveNoRows(t *testing.T) {
	pool := pgtest.Pool(t)
	s := open(t, pool)
	ctx := context.Background()
	for _, chatID := range []string{"c1", "c2", "c3"} {
		c := &chat.Conversation{TeamID: "t", AppID: "a", ChatID: chatID, CustomUID: chatID}
		recs := []chat.Record{{DataID: "r0"}, {DataID: "r1"}, {DataID: "r2"}, {DataID: "r1"}, {DataID: "r4"}}
		if err := s.AppendTurn(ctx, c, recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRecord(ctx, "t", "a", "c1", "r1"); err != nil {
		t.Fatal(err)
	}
	var seqs []int32
	rows, _ := pool.Query(ctx, `SELECT r.seq FROM chat_records r JOIN chat_conversations c ON c.id = r.conv_id WHERE c.chat_id = 'c1' ORDER BY r.seq`)
	for rows.Next() {
		var n int32
		_ = rows.Scan(&n)
		seqs = append(seqs, n)
	}
	rows.Close()
	var messages int
	_ = pool.QueryRow(ctx, `SELECT messages FROM chat_conversations WHERE chat_id = 'c1'`).Scan(&messages)
	if !slices.Equal(seqs, []int32{0, 1, 2}) || messages != 3 {
		t.Fatalf("c1's seqs %v, messages %d; want 0 1 2 and 3", seqs, messages)
	}
	if n, err := s.DeleteConversations(ctx, "t", "a", chat.ConversationFilter{CustomUID: "c2"}); err != nil || n != 1 {
		t.Fatalf("DeleteConversations: %d %v", n, err)
	}
	var convs, recs int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM chat_conversations`).Scan(&convs)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM chat_records`).Scan(&recs)
	if convs != 2 || recs != 8 {
		t.Fatalf("%d conversations, %d records; want 2, 8", convs, recs)
	}
	if _, err := s.Record(ctx, "t", "a", "c2", "r0"); !errors.Is(err, chat.ErrChatNotFound) {
		t.Fatalf("a deleted conversation's record: %v", err)
	}
}
