package auth

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkFailureMemory sends failures from 10,000 new client addresses
// per round, for 10 rounds, and reports the heap the authenticator holds
// after the first round and after the last, against an idle one: with the
// throttle capped at DefaultMaxTrackedAddrs (10,000) and the audit groups
// at 1,000, the later rounds must not add to it.
func BenchmarkFailureMemory(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		a := NewAuthenticator(NewMemoryStore(), Options{FlushInterval: time.Hour})
		ctx := context.Background()
		idle := heap()
		var after []uint64
		for round := range 10 {
			for i := range 10_000 {
				_, _ = a.Authenticate(ctx, "never-issued-key", addrN(round*10_000+i))
			}
			after = append(after, heap())
		}
		b.ReportMetric(float64(after[0]-idle)/1024, "KiB-after-10k-addrs")
		b.ReportMetric(float64(after[9]-idle)/1024, "KiB-after-100k-addrs")
		b.ReportMetric(float64(a.failures.tracked()), "addrs-tracked")
		_ = a.Close(ctx) // also keeps a alive past the last reading
	}
}
