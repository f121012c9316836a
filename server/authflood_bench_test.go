package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/server"
)

// afFigures is what one flood of wrong keys cost.
type afFigures struct {
	status                  map[int]int
	rows, counted           int   // auth.failed events stored, and the failures they count
	fileBefore, fileAfter   int64 // bytes of the bbolt file
	usedAfter               int64 // bytes bbolt has allocated in it
	queryBefore, queryAfter time.Duration
	// heap after each flood; the floods from many addresses are repeated
	// from new addresses each time, to show the memory stays capped
	heap []uint64
}

// afUnknownKey returns a well-formed generated-style key, valid checksum,
// that no server issued.
func afUnknownKey() string {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 255))
	body := n.Text(62)
	for len(body) < 43 {
		body = "0" + body
	}
	signed := "cg-" + body[:43]
	return signed + etChecksum(signed)
}

// afAuthz returns the i-th wrong Authorization header: half well-formed
// unknown keys, half garbage of several kinds.
func afAuthz(i int) string {
	switch i % 6 {
	case 1:
		return "Basic " + fmt.Sprint(i)
	case 3:
		k := afUnknownKey()
		return "Bearer " + k[:10] + "x" + k[11:] // checksum no longer matches
	case 5:
		return fmt.Sprintf("Bearer junk %d", i)
	}
	return "Bearer " + afUnknownKey()
}

// afQuery is the median latency of the admin's audit query (newest 100).
func afQuery(tb testing.TB, c *http.Client, base string) time.Duration {
	var ds []time.Duration
	for range 21 {
		req, _ := http.NewRequest("GET", base+"/api/support/openapi/audit?limit=100", nil)
		req.Header.Set("Authorization", "Bearer "+etRoot)
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ds = append(ds, time.Since(start))
		if resp.StatusCode != 200 {
			tb.Fatalf("audit query: %d", resp.StatusCode)
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func afHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// afBolt reads the auth.failed rows of a closed data directory and
// bbolt's allocated size.
func afBolt(tb testing.TB, dir string) (rows, counted int, used int64) {
	db, err := bbolt.Open(filepath.Join(dir, server.DBFile), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		used = tx.Size()
		return tx.Bucket([]byte("auth.audit")).ForEach(func(_, v []byte) error {
			var e struct {
				Action string `json:"action"`
				Count  int    `json:"count"`
			}
			_ = json.Unmarshal(v, &e)
			if e.Action == "auth.failed" {
				rows++
				counted += max(e.Count, 1)
			}
			return nil
		})
	})
	return rows, counted, used
}

func afFileSize(tb testing.TB, dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, server.DBFile))
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// afFlood starts the real server on a fresh bbolt file and sends n wrong
// keys from 4 concurrent clients: from one address, or, through a trusted
// proxy, each from its own (X-Forwarded-For).
func afFlood(tb testing.TB, n int, manyAddrs bool) afFigures {
	dir := tb.TempDir()
	cfg := server.Config{RootKey: etRoot, Stderr: io.Discard}
	cfg.Server.Data = dir
	cfg.Logging.Level = "error"
	if manyAddrs {
		cfg.Auth.TrustedProxies = []string{"127.0.0.1/32"}
	}
	s, err := server.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	f := afFigures{status: map[int]int{}}
	f.queryBefore = afQuery(tb, client, base)
	f.fileBefore = afFileSize(tb, dir)
	f.heap = append(f.heap, afHeap())

	send := func(offset int) {
		var (
			next atomic.Int64
			mu   sync.Mutex
			wg   sync.WaitGroup
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					req, _ := http.NewRequest("GET", base+"/api/support/openapi/me", nil)
					req.Header.Set("Authorization", afAuthz(i))
					if manyAddrs {
						j := offset + i
						req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255))
					}
					resp, err := client.Do(req)
					if err != nil {
						tb.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					f.status[resp.StatusCode]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	floods := 1
	if manyAddrs {
		floods = 3
	}
	for i := range floods {
		send(i * n)
		f.heap = append(f.heap, afHeap())
	}
	f.queryAfter = afQuery(tb, client, base)
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	f.fileAfter = afFileSize(tb, dir)
	f.rows, f.counted, f.usedAfter = afBolt(tb, dir)
	return f
}

// BenchmarkAuthFlood measures what 10,000 wrong keys cost the real server:
// answers by status, auth.failed rows and the failures they count, growth
// of the bbolt file and the admin's audit query before and after. From
// many addresses it sends three floods of 10,000 new addresses each and
// reports the heap after the later ones against the first.
// Run it once: go test ./server -run '^$' -bench AuthFlood -benchtime 1x
func BenchmarkAuthFlood(b *testing.B) {
	for _, many := range []bool{false, true} {
		name := "one-address"
		if many {
			name = "many-addresses"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f := afFlood(b, 10_000, many)
				b.ReportMetric(float64(f.status[401]), "401s")
				b.ReportMetric(float64(f.status[429]), "429s")
				b.ReportMetric(float64(f.rows), "audit-rows")
				b.ReportMetric(float64(f.counted), "failures-counted")
				b.ReportMetric(float64(f.fileAfter-f.fileBefore), "file-growth-B")
				b.ReportMetric(float64(f.usedAfter), "bolt-size-B")
				b.ReportMetric(float64(f.queryBefore.Microseconds()), "query-before-µs")
				b.ReportMetric(float64(f.queryAfter.Microseconds()), "query-after-µs")
				for i := 2; i < len(f.heap); i++ {
					b.ReportMetric(float64(int64(f.heap[i])-int64(f.heap[1]))/1024, fmt.Sprintf("heap-%dk-vs-10k-KiB", 10*i))
				}
			}
		})
	}
}
