package pgstore_test

// Benchmarks of the Postgres store and of Services sharing it. They
// assert nothing about time; run them with
//
//	CHATGATE_TEST_POSTGRES=... go test -run '^$' -bench . -benchtime 1x ./dataset/pgstore/
//
// The 100,000-chunk corpus is stored once in schema benchSchema of the
// test database (a few minutes) and reused by later runs; drop the schema
// to build it again.

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/pgstore"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
)

// benchSchema holds the 100k corpus; its name says what it holds.
const benchSchema = "chatgate_bench_dataset_100k_v1"

const benchN = 100_000

// benchText is the i-th synthetic chunk, about 300 characters: words drawn
// from a fixed vocabulary, a few common and most rare, distinct for each i.
func benchText(i int) string {
	syll := []string{"ka", "ri", "to", "mu", "se", "na", "po", "li", "ve", "zu", "an", "el", "or", "tek", "mon", "dra"}
	r := rand.New(rand.NewPCG(uint64(i), 99))
	var sb strings.Builder
	for w := range 48 {
		if w > 0 {
			sb.WriteByte(' ')
		}
		n := int(r.ExpFloat64()*400) % 6000 // word number: small ones are common
		for k := 0; k < 2+n%3; k++ {
			sb.WriteString(syll[(n>>(2*k))%len(syll)])
		}
		fmt.Fprintf(&sb, "%d", n%97)
	}
	return sb.String()
}

// benchQuery is a query cut from the middle of chunk src.
func benchQuery(j int) (string, int) {
	src := (j*7919 + 13) % benchN
	return strings.Join(strings.Fields(benchText(src))[10:22], " "), src
}

func benchID(i int) string { return fmt.Sprintf("%024x", i) }

// inSchema is dsn with its connections' search path set to schema.
func inSchema(b *testing.B, dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// corpus returns a DSN whose schema holds benchN trained chunks in one
// dataset, with their vectors, and the dataset's id, building it first if
// needed through the store's own Enqueue and Commit, 1,000 per commit.
func corpus(b *testing.B) (dsn, datasetID string) {
	base := os.Getenv(pgtest.Env)
	if base == "" {
		b.Skip(pgtest.Env + " is not set")
	}
	dsn = inSchema(b, base, benchSchema)
	dsID := benchID(1 << 40)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var ready bool
	_ = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'bench_ready')`, benchSchema).Scan(&ready)
	if ready {
		return dsn, dsID
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+benchSchema+` CASCADE; CREATE SCHEMA `+benchSchema); err != nil {
		b.Fatal(err)
	}
	st := storeOn(b, dsn, pgstore.Options{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := &dataset.Dataset{ID: dsID, TeamID: team, Name: "bench", VectorModel: dataset.LocalModel, CreateTime: t0}
	coll := &dataset.Collection{ID: benchID(1<<40 + 1), TeamID: team, DatasetID: dsID, Name: "bench",
		Type: dataset.CollectionVirtual, TrainingType: dataset.ModeIndex, CreateTime: t0}
	if err := st.PutDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if err := st.PutCollection(ctx, coll); err != nil {
		b.Fatal(err)
	}
	for at := 0; at < benchN; at += 1000 {
		items, done := benchTrained(coll, at, min(at+1000, benchN), t0)
		if rep, err := st.Enqueue(ctx, items); err != nil || len(rep) > 0 {
			b.Fatalf("enqueue: %d repeats, %v", len(rep), err)
		}
		if gone, err := st.Commit(ctx, done); err != nil || len(gone) > 0 {
			b.Fatalf("commit: %d gone, %v", len(gone), err)
		}
	}
	for _, sql := range []string{`VACUUM ANALYZE ` + benchSchema + `.dataset_data`, `VACUUM ANALYZE ` + benchSchema + `.dataset_vectors`,
		`CREATE TABLE ` + benchSchema + `.bench_ready ()`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("corpus: %d chunks stored in %v", benchN, time.Since(start).Round(time.Millisecond))
	return dsn, dsID
}

// benchTrained is chunks [from, to) as queued items and what they train
// into, embedded by the local embedder on every core.
func benchTrained(c *dataset.Collection, from, to int, t0 time.Time) ([]*dataset.TrainingItem, []dataset.Trained) {
	items := make([]*dataset.TrainingItem, to-from)
	done := make([]dataset.Trained, to-from)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < to-from; k += workers {
				i := from + k
				q, ct := benchText(i), t0.Add(time.Duration(i)*time.Microsecond)
				v, _ := dataset.LocalEmbedder{}.Embed(ctx, []string{q})
				items[k] = &dataset.TrainingItem{ID: benchID(i), TeamID: team, DatasetID: c.DatasetID, CollectionID: c.ID,
					Mode: dataset.ModeIndex, Q: q, A: fmt.Sprintf("answer %d", i), NextAttempt: t0, CreateTime: ct}
				done[k] = dataset.Trained{ItemID: benchID(i), Data: []*dataset.Data{{ID: benchID(i), TeamID: team,
					DatasetID: c.DatasetID, CollectionID: c.ID, Q: q, A: fmt.Sprintf("answer %d", i), CreateTime: ct, UpdateTime: ct}},
					Vectors: []dataset.Vector{{ID: benchID(i), Values: v[0]}}}
			}
		})
	}
	wg.Wait()
	return items, done
}

// percentile is the p-quantile (0-1) of ds in milliseconds, nearest rank.
func percentile(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	i := max(0, min(int(p*float64(len(ds))+0.5)-1, len(ds)-1))
	return float64(ds[i]) / 1e6
}

// nopUsage stands for the billing ledger, so that training counts the
// tokens it bills.
type nopUsage struct{}

func (nopUsage) RecordDatasetUsage(context.Context, dataset.UsageRecord) error { return nil }

// BenchmarkPushAndTrain pushes 10,000 items (20 pushes of 500, spread over
// the Services) and waits until every one is trained data, with the local
// embedder and the default options, on 1 and on 3 Services sharing one
// schema (each on a pool of its own, as replicas). Goal with 1: 2,000
// trained items/s.
func BenchmarkPushAndTrain(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			dsn := pgtest.DSN(b)
			svcs := make([]*dataset.Service, n)
			for i := range svcs {
				svcs[i], _ = replica(b, dsn, pgstore.Options{}, dataset.Options{Usage: nopUsage{}})
			}
			_, collID := newCollection(b, svcs[0])
			const total = 10_000
			next := 0
			for b.Loop() {
				for at := 0; at < total; at += 500 {
					items := make([]dataset.PushItem, 500)
					for i := range items {
						items[i] = dataset.PushItem{Q: benchText(next + at + i), A: "answer"}
					}
					s := svcs[(at/500)%n]
					if res, err := s.Push(ctx, dataset.PushRequest{TeamID: team, CollectionID: collID, Data: items}); err != nil || res.InsertLen != 500 {
						b.Fatalf("push: %v %+v", err, res)
					}
				}
				next += total
				for {
					d, err := svcs[0].Collection(ctx, team, collID)
					if err != nil {
						b.Fatal(err)
					}
					if d.DataAmount >= next {
						break
					}
					time.Sleep(2 * time.Millisecond)
				}
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "trained-items/s")
		})
	}
}

// BenchmarkReplicaStartup100k measures dataset.New on a store holding
// 100,000 chunks: the snapshot read, every vector into the FlatStore and
// every item into the built-in full-text index. Goal: 5 s. Three starts
// per iteration, the median reported; read-s is the snapshot alone, read
// and decoded, with nothing indexed.
func BenchmarkReplicaStartup100k(b *testing.B) {
	dsn, dsID := corpus(b)
	st := storeOn(b, dsn, pgstore.Options{})
	var starts, reads []time.Duration
	for b.Loop() {
		for range 3 {
			runtime.GC()
			start := time.Now()
			s, err := dataset.New(ctx, dataset.Options{Store: st, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			starts = append(starts, time.Since(start))
			b.StopTimer()
			q := benchText(5)
			res, err := s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{dsID}, Text: q, MaxResults: 1})
			if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != benchID(5) {
				b.Fatalf("after start-up: %v %+v", err, res)
			}
			_ = s.Close(ctx)
			runtime.GC()
			start = time.Now()
			n := 0
			if _, err := st.SnapshotChanges(ctx, func(dataset.Change) error { n++; return nil }); err != nil || n != benchN {
				b.Fatalf("snapshot: %d items, %v", n, err)
			}
			reads = append(reads, time.Since(start))
			b.StartTimer()
		}
	}
	b.ReportMetric(percentile(starts, 0.5)/1e3, "start-s")
	b.ReportMetric(percentile(reads, 0.5)/1e3, "read-s")
}

// BenchmarkSearch100k measures Service.Search over the 100,000 chunks on
// a replica (a Service on the Postgres store, its indexes in memory) and
// on an embedded Service (a MemoryStore holding the same data), per mode:
// p50 and p99 of 200 queries (limit 10), and how often the chunk a query
// was cut from is among the hits.
func BenchmarkSearch100k(b *testing.B) {
	dsn, dsID := corpus(b)
	st := storeOn(b, dsn, pgstore.Options{})
	replicaSvc, err := dataset.New(ctx, dataset.Options{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer replicaSvc.Close(ctx)
	embedded := embeddedCopy(b, st, dsID)
	defer embedded.Close(ctx)
	for _, sv := range []struct {
		name string
		s    *dataset.Service
	}{{"replica", replicaSvc}, {"embedded", embedded}} {
		for _, mode := range modes {
			b.Run(mode+"/"+sv.name, func(b *testing.B) {
				var lat []time.Duration
				found, asked := 0, 0
				for b.Loop() {
					for j := range 200 {
						q, src := benchQuery(j)
						start := time.Now()
						res, err := sv.s.Search(ctx, dataset.SearchRequest{TeamID: team, DatasetIDs: []string{dsID}, Text: q, Mode: mode})
						lat = append(lat, time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						asked++
						if slices.ContainsFunc(res.Hits, func(h dataset.SearchHit) bool { return h.ID == benchID(src) }) {
							found++
						}
					}
				}
				b.ReportMetric(percentile(lat, 0.5), "p50-ms")
				b.ReportMetric(percentile(lat, 0.99), "p99-ms")
				b.ReportMetric(float64(found)/float64(asked), "hit@10")
			})
		}
	}
}

// embeddedCopy is a Service on a MemoryStore holding what st holds of
// dataset dsID, trained as the corpus was.
func embeddedCopy(b *testing.B, st *pgstore.Store, dsID string) *dataset.Service {
	mem := dataset.NewMemoryStore()
	ds, err := st.Dataset(ctx, dsID)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := st.Collections(ctx, dsID)
	if err != nil || len(cs) != 1 {
		b.Fatalf("collections: %v %v", cs, err)
	}
	if err := mem.PutDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if err := mem.PutCollection(ctx, cs[0]); err != nil {
		b.Fatal(err)
	}
	var items []*dataset.TrainingItem
	var done []dataset.Trained
	flush := func() {
		if _, err := mem.Enqueue(ctx, items); err != nil {
			b.Fatal(err)
		}
		if _, err := mem.Commit(ctx, done); err != nil {
			b.Fatal(err)
		}
		items, done = items[:0], done[:0]
	}
	if _, err := st.SnapshotChanges(ctx, func(c dataset.Change) error {
		d := c.Data
		items = append(items, &dataset.TrainingItem{ID: d.ID, TeamID: d.TeamID, DatasetID: d.DatasetID, CollectionID: d.CollectionID,
			Mode: dataset.ModeIndex, Q: d.Q, A: d.A, CreateTime: d.CreateTime})
		done = append(done, dataset.Trained{ItemID: d.ID, Data: []*dataset.Data{d}, Vectors: c.Vectors})
		if len(items) == 1000 {
			flush()
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	flush()
	s, err := dataset.New(ctx, dataset.Options{Store: mem, Logger: slog.New(slog.DiscardHandler), PollEvery: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if p, _ := mem.TextPending(ctx, 1); len(p) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			b.Fatal("the embedded full-text index never caught up")
		}
	}
}

// watched is a vector index that tells when a vector arrives.
type watched struct {
	dataset.VectorStore
	mu   sync.Mutex
	want string
	got  chan time.Time
}

func (w *watched) Upsert(ctx context.Context, ds string, vs []dataset.Vector) error {
	err := w.VectorStore.Upsert(ctx, ds, vs)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range vs {
		if v.ID == w.want {
			w.got <- time.Now()
			w.want = ""
		}
	}
	return err
}

func (w *watched) expect(id string) {
	w.mu.Lock()
	w.want = id
	w.mu.Unlock()
}

// BenchmarkFeedLag measures the change feed's lag: from Commit returning
// on replica A (one trained item, committed as A's training does) to the
// item's vector being in replica B's index, notified. An op is one item;
// p50 and p99 over all.
func BenchmarkFeedLag(b *testing.B) {
	dsn := pgtest.DSN(b)
	a, sa := replica(b, dsn, pgstore.Options{}, dataset.Options{})
	w := &watched{VectorStore: dataset.NewFlatStore(), got: make(chan time.Time, 1)}
	replica(b, dsn, pgstore.Options{}, dataset.Options{Vectors: w})
	_, collID := newCollection(b, a)
	c, err := sa.Collection(ctx, collID)
	if err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	t0 := time.Now().UTC()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		items, done := benchTrained(c, i, i+1, t0)
		items[0].NextAttempt = t0.Add(time.Hour) // not A's to train
		if _, err := sa.Enqueue(ctx, items); err != nil {
			b.Fatal(err)
		}
		w.expect(items[0].ID)
		b.StartTimer()
		if _, err := sa.Commit(ctx, done); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		select {
		case at := <-w.got:
			lags = append(lags, max(at.Sub(committed), 0))
		case <-time.After(10 * time.Second):
			b.Fatalf("item %d never reached B", i)
		}
	}
	b.ReportMetric(percentile(slices.Clone(lags), 0.5), "lag-p50-ms")
	b.ReportMetric(percentile(lags, 0.99), "lag-p99-ms")
}

// BenchmarkLoadEncoding compares the two ways to keep a vector as a row
// that need no extension, read back as a replica loads them: bytea of
// little-endian float32s (what the store does) and real[]. 50,000
// 256-dimension vectors; an op is reading and decoding all of them.
func BenchmarkLoadEncoding(b *testing.B) {
	pool := pgtest.Pool(b)
	const n, dim = 50_000, 256
	if _, err := pool.Exec(ctx, `CREATE TABLE vb (id text PRIMARY KEY, vec bytea NOT NULL);
		CREATE TABLE vr (id text PRIMARY KEY, vec real[] NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ids []string
	var blobs [][]byte
	var arrays [][]float32
	for i := range n {
		v := make([]float32, dim)
		for k := range v {
			v[k] = r.Float32()*2 - 1
		}
		ids, arrays = append(ids, benchID(i)), append(arrays, v)
		blob := make([]byte, 4*dim)
		for k, f := range v {
			binary.LittleEndian.PutUint32(blob[4*k:], math.Float32bits(f))
		}
		blobs = append(blobs, blob)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO vb SELECT * FROM unnest($1::text[], $2::bytea[])`, ids, blobs); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"vr"}, []string{"id", "vec"}, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
		return []any{ids[i], arrays[i]}, nil
	})); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, table string
		decode      func(rows pgx.Rows) (int, error)
	}{
		{"bytea", "vb", func(rows pgx.Rows) (int, error) {
			var blob []byte
			if err := rows.Scan(nil, &blob); err != nil {
				return 0, err
			}
			v := make([]float32, len(blob)/4)
			for k := range v {
				v[k] = math.Float32frombits(binary.LittleEndian.Uint32(blob[4*k:]))
			}
			return len(v), rows.Err()
		}},
		{"real[]", "vr", func(rows pgx.Rows) (int, error) {
			var v []float32
			err := rows.Scan(nil, &v)
			return len(v), err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := pool.Query(ctx, `SELECT id, vec FROM `+tc.table)
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for rows.Next() {
					if d, err := tc.decode(rows); err != nil || d != dim {
						b.Fatalf("%d values, %v", d, err)
					}
					got++
				}
				if rows.Err() != nil || got != n {
					b.Fatalf("%d rows, %v", got, rows.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/vector")
		})
	}
}

// BenchmarkCommit measures the training queue's hot path on one replica:
// Claim of a batch of 64 due items, then their Commit (data, vectors,
// changes, usage, removal from the queue) in one transaction. An op is
// one batch; ns/item divides by 64.
func BenchmarkCommit(b *testing.B) {
	st := open(b)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := &dataset.Dataset{ID: "ds", TeamID: team, Name: "bench", VectorModel: dataset.LocalModel, CreateTime: t0}
	c := &dataset.Collection{ID: "c", TeamID: team, DatasetID: "ds", Name: "bench", CreateTime: t0}
	if err := st.PutDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if err := st.PutCollection(ctx, c); err != nil {
		b.Fatal(err)
	}
	const batch = 64
	usage := []dataset.UsageRecord{{TeamID: team, DatasetID: "ds", CollectionID: "c", Module: dataset.ModuleEmbedding, Items: batch}}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		items, done := benchTrained(c, i*batch, (i+1)*batch, t0)
		if _, err := st.Enqueue(ctx, items); err != nil {
			b.Fatal(err)
		}
		usage[0].ID, usage[0].Time = fmt.Sprintf("u%d", i), t0
		done[0].Usage = usage
		b.StartTimer()
		got, err := st.Claim(ctx, t0.Add(time.Hour), batch, nil)
		if err != nil || len(got) != batch {
			b.Fatalf("claim: %d items, %v", len(got), err)
		}
		if gone, err := st.Commit(ctx, done); err != nil || len(gone) > 0 {
			b.Fatalf("commit: %v %v", gone, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/item")
}
