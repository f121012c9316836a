package pgstore_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// countingConn counts the client's writes: pgx sends a request whole, then
// waits for the answer, so each write is a round trip.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// Every method, the hot path's AppendTurn and Conversation among them, is
// one round trip once its statement is prepared on the connection: no
// BEGIN or COMMIT, no read before a write.
func TestOneRoundTrip(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		return countingConn{c, &writes}, err
	}
	cfg.MaxConns = 1 // so that every statement is prepared once
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := open(t, pool)
	ctx := context.Background()
	c := &chat.Conversation{TeamID: "t", AppID: "app", ChatID: "c", Title: "x"}
	recs := []chat.Record{{DataID: "q", Obj: "Human", Value: "q"}, {DataID: "a", Obj: "AI", Value: "a"}}
	calls := []struct {
		name string
		call func() error
	}{
		{"PutApp", func() error { return s.PutApp(ctx, &chat.App{ID: "app", TeamID: "t", Name: "x"}) }},
		{"App", func() error { _, err := s.App(ctx, "t", "app"); return err }},
		{"Apps(team)", func() error { _, err := s.Apps(ctx, "t"); return err }},
		{"Apps()", func() error { _, err := s.Apps(ctx, ""); return err }},
		{"AppendTurn", func() error { return s.AppendTurn(ctx, c, recs) }},
		{"AppendTurn again", func() error { return s.AppendTurn(ctx, c, recs) }},
		{"Conversation", func() error { _, _, err := s.Conversation(ctx, "t", "app", "c", 3); return err }},
		{"Records", func() error { _, _, err := s.Records(ctx, "t", "app", "c", 1, 2); return err }},
		{"Conversations", func() error { _, _, err := s.Conversations(ctx, "t", "app", 0, 10); return err }},
		{"DeleteConversation", func() error { return s.DeleteConversation(ctx, "t", "app", "c") }},
		{"AppendTurn to a cleared chat", func() error { return s.AppendTurn(ctx, c, recs) }},
		{"DeleteApp", func() error { return s.DeleteApp(ctx, "t", "app") }},
	}
	for pass := range 2 { // the first pass prepares each statement: two round trips
		for _, k := range calls {
			before := writes.Load()
			if err := k.call(); err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			if n := writes.Load() - before; pass == 1 && n != 1 {
				t.Errorf("%s: %d round trips, want 1", k.name, n)
			}
		}
	}
}
