package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/shareauth"
	"github.com/chatgate/chatgate/shareauth/pgstore"
)

// Link is asked at every visitor's question: one indexed read.
func BenchmarkLink(b *testing.B) {
	s := open(b, pgstore.Options{})
	for i := range 1000 {
		l := &shareauth.Link{ID: fmt.Sprintf("link-%04d", i), TeamID: "team", AppID: "app", Name: "bench",
			Secret: "cgs_bench", Limit: shareauth.Limit{HookURL: "https://auth.example.com"}, CreateTime: t0}
		if err := s.PutLink(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Link(ctx, fmt.Sprintf("link-%04d", i%1000)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.Link(ctx, fmt.Sprintf("link-%04d", i%1000)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// Claim then Complete is the outbox's turn for a delivered callback; an
// op is one turn of a batch of callbacks.
func BenchmarkClaimComplete(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			pool := pgtest.Pool(b)
			s, err := pgstore.New(ctx, pool)
			if err != nil {
				b.Fatal(err)
			}
			// a backlog every op can draw from, with room to spare
			if _, err := pool.Exec(ctx, `INSERT INTO shareauth_deliveries
				(id, share_id, path, body, attempts, next_attempt, last_error, failed, create_time)
				SELECT 'd' || lpad(i::text, 8, '0'), 'link', '/shareAuth/finish', '{"token":"t"}', 0, $1, '', false, $1
				FROM generate_series(1, $2) i`, t0, 200_000); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `ANALYZE shareauth_deliveries`); err != nil {
				b.Fatal(err)
			}
			now, none := t0.Add(time.Hour), func(string) bool { return false }
			ids := make([]string, 0, batch)
			b.ReportAllocs()
			for b.Loop() {
				ds, err := s.Claim(ctx, now, batch, none)
				if err != nil || len(ds) != batch {
					b.Fatalf("Claim: %d callbacks, %v (backlog spent?)", len(ds), err)
				}
				ids = ids[:0]
				for _, d := range ds {
					ids = append(ids, d.ID)
				}
				if err := s.Complete(ctx, ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/callback")
		})
	}
}
