package billing_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
)

// BenchmarkLedgerRecord writes usage records to a BoltLedger on a real file
// (default bbolt options: every commit is fsynced) from 1 and from 8
// concurrent writers. It reports each call's latency, p50 and p99, and the
// amortized cost per record: wall time divided by records, which is what
// group commit lowers while each call still waits for its fsync.
func BenchmarkLedgerRecord(b *testing.B) {
	ctx := context.Background()
	for _, writers := range []int{1, 8} {
		b.Run(map[int]string{1: "writers=1", 8: "writers=8"}[writers], func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "ledger.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			l, _ := billing.NewBoltLedger(db)
			var (
				mu  sync.Mutex
				lat []time.Duration
			)
			per := max(b.N/writers, 1)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					mine := make([]time.Duration, 0, per)
					for range per {
						t0 := time.Now()
						if err := l.Record(ctx, &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Module: "AI Chat",
							Model: "m", InputTokens: 100, OutputTokens: 50, Points: 0.2}); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			wg.Wait()
			wall := time.Since(start)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
			b.ReportMetric(float64(wall.Nanoseconds())/1000/float64(len(lat)), "µs/record")
		})
	}
}
