package billing_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/boltx"
)

// BenchmarkBoltLedgerRecord writes usage records to a BoltLedger on a real
// file (each record is fsynced before Record returns), from 1, 8 and 64
// concurrent writers that share b.N records: with the freelist written on
// every commit (bbolt's default, "freelist=synced"), with the options
// chatgate's server opens its file with (internal/boltx.Options: the
// freelist kept in memory only and rebuilt on open, "freelist=rebuilt"),
// and with those and a journal ("journal": what the server runs; records
// are synced in the journal and applied to bbolt in batches, and the
// measured time includes applying the last of them). The files are in the
// test's temporary directory: TMPDIR=/dev/shm puts them on tmpfs.
//
// It reports per-call latency (p50-µs, p99-µs: from Record's call to its
// return, so including the wait for the group commit's fsync) and the
// amortized cost (µs/record: wall time / records, what the group commit
// lowers), cpu-µs/record, the process's CPU time per record, and
// pages/record, the pages bbolt wrote (before its meta page) per record.
func BenchmarkBoltLedgerRecord(b *testing.B) {
	for _, v := range []struct {
		name    string
		opts    *bbolt.Options
		journal bool
	}{
		{"freelist=synced", &bbolt.Options{Timeout: time.Second}, false},
		{"freelist=rebuilt", boltx.Options(time.Second), false},
		{"journal", boltx.Options(time.Second), true},
	} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", v.name, writers), func(b *testing.B) {
				benchLedgerRecord(b, v.opts, v.journal, writers)
			})
		}
	}
}

func benchLedgerRecord(b *testing.B, opts *bbolt.Options, journal bool, writers int) {
	var (
		l  *billing.BoltLedger
		db *bbolt.DB
	)
	if journal {
		l, db = openJournaledWith(b, b.TempDir(), opts, billing.BoltLedgerOptions{})
	} else {
		l, db = openBoltLedgerWith(b, filepath.Join(b.TempDir(), "ledger.db"), opts)
	}
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
	start, cpu0 := time.Now(), cpuTime(b)
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
	if journal {
		if err := l.Close(); err != nil { // applies what waits
			b.Fatal(err)
		}
	}
	wall, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	if len(lat) != b.N {
		b.Fatalf("%d of %d records written", len(lat), b.N)
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
	b.ReportMetric(us(wall)/float64(b.N), "µs/record")
	b.ReportMetric(us(cpu)/float64(b.N), "cpu-µs/record")
	after := db.Stats()
	b.ReportMetric(float64(after.TxStats.GetWrite()-before.TxStats.GetWrite())/float64(b.N), "pages/record")
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
