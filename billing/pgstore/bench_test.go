package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatgate/chatgate/billing"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// benchConns caps the benchmark's pool: the test server's connections are
// shared with other tests.
const benchConns = 32

// BenchmarkRecord writes usage records from 1, 8 and 64 concurrent
// writers sharing b.N records, on one pool of as many connections as
// writers (at most benchConns), each
// Record committed (synchronous_commit as the server has it) before it
// returns. Two shapes of load:
//
//   - keys: each writer its own key, all on one app, no bill: chat traffic;
//   - bill: every writer on one key, one app and one bill item: a training
//     run's workers, the hot-row case the slots are for.
//
// It reports records/s (records / wall time) and µs/record (its inverse,
// the amortized cost), p50-µs and p99-µs (one Record's call to its return,
// waiting for its batch and a connection included), and cpu-µs/record,
// this process's CPU (user and system) per record.
func BenchmarkRecord(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		for _, shape := range []string{"keys", "bill"} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, shape), func(b *testing.B) {
				pool, err := pgxpool.New(ctx, fmt.Sprintf("%s&pool_max_conns=%d", pgtest.DSN(b), min(writers, benchConns)))
				s, bill := ledgerOn(b, pool, err)
				benchWriters(b, writers, func(w int) *billing.Record {
					r := &billing.Record{TeamID: "t", KeyID: "k", AppID: "a", Source: billing.SourceTraining, Module: "embedding",
						Model: "local", InputTokens: 120, OutputTokens: 40, Points: 0.2}
					if shape == "keys" {
						r.KeyID, r.Source, r.Module, r.Model = fmt.Sprintf("k%d", w), billing.SourceChat, "AI Chat", "m"
					} else {
						r.BillID = bill.ID
					}
					return r
				}, s.Record)
			})
		}
	}
}

// benchWriters has writers goroutines share b.N calls of record on the
// records next makes, and reports their rate and latency.
func benchWriters(b *testing.B, writers int, next func(w int) *billing.Record,
	record func(context.Context, *billing.Record) error) {
	b.Helper()
	lat := make([]time.Duration, b.N) // each call's slot, taken from calls
	var (
		calls atomic.Int64
		wg    sync.WaitGroup
	)
	b.ResetTimer()
	cpu := cpuTime(b)
	for w := range writers {
		wg.Go(func() {
			for i := calls.Add(1) - 1; i < int64(b.N); i = calls.Add(1) - 1 {
				r, start := next(w), time.Now()
				if err := record(ctx, r); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu = cpuTime(b) - cpu
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/record")
	b.ReportMetric(float64(lat[b.N/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[b.N*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/record")
}

// BenchmarkRoundTrip is the floor under BenchmarkRecord's one writer: one
// caller's statements through pgx on this machine, with nothing of the
// ledger. "select" is SELECT 1, a round trip alone; "insert" commits a
// one-row INSERT, so it waits for the server's WAL flush as a Record does.
// Its cpu-µs/op is what the wait costs this process (switching threads in
// and out, the runtime's timers), which a chat on the Postgres deployment
// pays once for its usage record.
func BenchmarkRoundTrip(b *testing.B) {
	pool := pgtest.Pool(b)
	if _, err := pool.Exec(ctx, "CREATE TABLE round_trip (id bigserial PRIMARY KEY, v text)"); err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct{ name, sql string }{
		{"select", "SELECT true"},
		{"insert", "INSERT INTO round_trip (v) VALUES ('x') RETURNING true"},
	} {
		b.Run(q.name, func(b *testing.B) {
			var ok bool
			cpu := cpuTime(b)
			for b.Loop() {
				if err := pool.QueryRow(ctx, q.sql).Scan(&ok); err != nil {
					b.Fatal(err)
				}
			}
			cpu = cpuTime(b) - cpu
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
