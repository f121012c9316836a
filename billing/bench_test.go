package billing_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgate/chatgate/billing"
)

// BenchmarkBoltLedgerRecord writes usage records to a BoltLedger on a real
// file with bbolt's default options (each commit is fsynced before Record
// returns), from 1, 8 and 64 concurrent writers that share b.N records.
//
// It reports per-call latency (p50-µs, p99-µs: from Record's call to its
// return, so including the wait for the group commit's fsync) and the
// amortized cost (µs/record: wall time / records, what the group commit
// lowers), and pages/record, the pages bbolt wrote (before its meta page)
// per record: what each commit's fdatasync waits for.
func BenchmarkBoltLedgerRecord(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, db := openBoltLedger(b, filepath.Join(b.TempDir(), "ledger.db"))
			if db.NoSync {
				b.Fatal("the benchmark must keep fsync on commit")
			}
			ctx := context.Background()
			var (
				left = atomic.Int64{}
				mu   sync.Mutex
				lat  = make([]time.Duration, 0, b.N)
				wg   sync.WaitGroup
			)
			left.Store(int64(b.N))
			before := db.Stats()
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					mine := make([]time.Duration, 0, b.N/writers+1)
					for left.Add(-1) >= 0 {
						r := &billing.Record{TeamID: "t", KeyID: fmt.Sprintf("k%d", w), AppID: "a", Source: billing.SourceChat,
							Module: "AI Chat", Model: "m", InputTokens: 120, OutputTokens: 40, Points: 0.2}
						t0 := time.Now()
						if err := l.Record(ctx, r); err != nil {
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
			b.StopTimer()
			if len(lat) != b.N {
				b.Fatalf("%d of %d records written", len(lat), b.N)
			}
			slices.Sort(lat)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
			b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
			b.ReportMetric(us(wall)/float64(b.N), "µs/record")
			after := db.Stats()
			b.ReportMetric(float64(after.TxStats.GetWrite()-before.TxStats.GetWrite())/float64(b.N), "pages/record")
		})
	}
}
