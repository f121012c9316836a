package dataset_test

// Knowledge-base benchmarks behind BENCHMARKS.md. They assert nothing about
// time; run them with
//
//	go test -run '^$' -bench 'PushIndex|PushAndTrain|SearchLatency100k|StartupLoad100k|PersistenceChoice' -benchtime 1x ./dataset/
//
// The 100,000-chunk corpus is built once (about a minute) under
// os.TempDir(), keyed by kbCorpusVersion, and reused by later runs; it is
// never written into the repository.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/philippgille/chromem-go"
	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/chromemstore"
	"github.com/chatgate/chatgate/dataset/fulltext"
	"github.com/chatgate/chatgate/internal/boltx"
)

// kbCorpusVersion names the cached corpus; change it whenever kbText, the
// corpus layout or the store's format changes.
const kbCorpusVersion = "kbbench-100k-v1"

const (
	kbTeam     = "bench-team"
	kbCorpusN  = 100_000
	kbWords    = 48  // words per chunk, about 300 characters
	kbQueries  = 200 // queries per latency measurement
	kbQueryLen = 12  // words of a chunk a query is made of
)

// kbVocab is a synthetic vocabulary: Latin pseudo-words made of syllables
// and two-character Chinese words, in a fixed shuffled order that kbText
// draws from with a Zipf law, so that, as in real text, a few words are in
// most chunks and most words in few.
var kbVocab = sync.OnceValue(func() []string {
	r := rand.New(rand.NewPCG(1, 2))
	syll := strings.Fields("ka ri to mu se na po li ve shi zu an el or tek mon dra vin qua bel sor lum fer gat")
	const han = "账户密码登录服务器超时部署集群副本备份恢复配额账单租户模型向量索引搜索答案上传导出导入计划重试延迟区域存储归档镜像分片退款发票订单客户产品价格库存物流仓库运输支付信用风险合同审批流程权限角色用户组织部门项目任务报告数据分析指标监控告警日志事件网络安全加密证书域名接口文档版本发布测试环境配置参数缓存队列消息通知邮件短信电话会议日程"
	hanRunes := []rune(han)
	seen := map[string]bool{}
	var words []string
	for len(words) < 4000 {
		var sb strings.Builder
		for range 2 + r.IntN(3) {
			sb.WriteString(syll[r.IntN(len(syll))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	for len(words) < 5500 {
		w := string([]rune{hanRunes[r.IntN(len(hanRunes))], hanRunes[r.IntN(len(hanRunes))]})
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	r.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	return words
})

// kbText is the i-th synthetic chunk: distinct for every i (its words come
// from a source seeded by i, and the rare ones differ).
func kbText(i int) string {
	vocab := kbVocab()
	r := rand.New(rand.NewPCG(uint64(i), 0x6b62))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	var sb strings.Builder
	for w := range kbWords {
		if w > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(vocab[z.Uint64()])
	}
	return sb.String()
}

// kbQuery is the j-th benchmark query and the chunk it was taken from:
// kbQueryLen words from the middle of that chunk, as a user might type.
func kbQuery(j, n int) (string, int) {
	src := (j*7919 + 13) % n
	words := strings.Fields(kbText(src))
	return strings.Join(words[10:10+kbQueryLen], " "), src
}

func kbID(i int) string { return fmt.Sprintf("%024x", i) } // the shape of id.New

// kbNopText is a TextIndex that holds nothing and says it is not empty, for
// measurements of the vector path alone (an empty index makes New queue a
// full re-index).
type kbNopText struct{}

func (kbNopText) Index(context.Context, []dataset.TextDoc) error { return nil }
func (kbNopText) Delete(context.Context, []string) error         { return nil }
func (kbNopText) Search(context.Context, []string, string, int) ([]dataset.Hit, error) {
	return nil, nil
}
func (kbNopText) Empty() (bool, error) { return false, nil }
func (kbNopText) Close() error         { return nil }

// kbOpen opens dir as the reference server does (server/dataset.go): the
// bbolt file, and the full-text index the server's dataset.full_text
// picks: the built-in one, filled from bbolt before dataset.New returns
// (opts.Text nil, the default), or with bleve the on-disk bleve index.
func kbOpen(b *testing.B, dir string, opts dataset.Options, bleve bool) (*dataset.Service, *dataset.BoltStore, func()) {
	b.Helper()
	db, err := boltx.Open(filepath.Join(dir, "chatgate.db"), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		b.Fatal(err)
	}
	var text *fulltext.Index
	if bleve {
		if text, err = fulltext.Open(filepath.Join(dir, "fulltext.bleve")); err != nil {
			b.Fatal(err)
		}
		opts.Text = text
	}
	opts.Store = st
	s, err := dataset.New(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s, st, func() {
		_ = s.Close(context.Background())
		if text != nil {
			_ = text.Close()
		}
		_ = db.Close()
	}
}

// kbEmbed embeds texts with the local embedder on every core.
func kbEmbed(texts []string) [][]float32 {
	out := make([][]float32, len(texts))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(texts); i += workers {
				v, _ := dataset.LocalEmbedder{}.Embed(context.Background(), texts[i:i+1])
				out[i] = v[0]
			}
		})
	}
	wg.Wait()
	return out
}

// kbFill stores chunks [from, to) of kbText in a collection through the
// store's own training path, Enqueue then Complete, 1,000 per transaction,
// as trained data with their local-embedder vectors.
func kbFill(b *testing.B, st *dataset.BoltStore, ds *dataset.Dataset, collID string, from, to int) {
	b.Helper()
	ctx := context.Background()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for at := from; at < to; at += 1000 {
		end := min(at+1000, to)
		texts := make([]string, 0, end-at)
		for i := at; i < end; i++ {
			texts = append(texts, kbText(i))
		}
		vecs := kbEmbed(texts)
		items := make([]*dataset.TrainingItem, len(texts))
		done := make([]dataset.Trained, len(texts))
		for k, q := range texts {
			i := at + k
			ct := created.Add(time.Duration(i) * time.Microsecond)
			items[k] = &dataset.TrainingItem{ID: kbID(i), TeamID: kbTeam, DatasetID: ds.ID, CollectionID: collID,
				Mode: dataset.ModeIndex, Q: q, A: fmt.Sprintf("answer %d", i), CreateTime: ct}
			done[k] = dataset.Trained{ItemID: kbID(i),
				Data: []*dataset.Data{{ID: kbID(i), TeamID: kbTeam, DatasetID: ds.ID, CollectionID: collID,
					Q: q, A: fmt.Sprintf("answer %d", i), CreateTime: ct, UpdateTime: ct}},
				Vectors: []dataset.Vector{{ID: kbID(i), Values: vecs[k]}}}
		}
		if rep, err := st.Enqueue(ctx, items); err != nil || len(rep) > 0 {
			b.Fatalf("enqueue: %d repeats, %v", len(rep), err)
		}
		if gone, err := st.Commit(ctx, done); err != nil || len(gone) > 0 {
			b.Fatalf("complete: %d gone, %v", len(gone), err)
		}
	}
}

// kbCorpus returns a data directory holding kbCorpusN trained chunks in one
// dataset, with their full-text index, building it on first use.
func kbCorpus(b *testing.B) (dir, datasetID string) {
	b.Helper()
	dir = filepath.Join(os.TempDir(), "chatgate-"+kbCorpusVersion)
	marker := filepath.Join(dir, "READY")
	if id, err := os.ReadFile(marker); err == nil {
		return dir, strings.TrimSpace(string(id))
	}
	start := time.Now()
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	db, err := boltx.Open(filepath.Join(dir, "chatgate.db"), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		b.Fatal(err)
	}
	ds := &dataset.Dataset{ID: kbID(1 << 40), TeamID: kbTeam, Name: "bench", VectorModel: dataset.LocalModel, CreateTime: time.Now().UTC()}
	coll := &dataset.Collection{ID: kbID(1<<40 + 1), TeamID: kbTeam, DatasetID: ds.ID, Name: "bench",
		Type: dataset.CollectionVirtual, TrainingType: dataset.ModeIndex, CreateTime: ds.CreateTime}
	if err := st.PutDataset(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if err := st.PutCollection(ctx, coll); err != nil {
		b.Fatal(err)
	}
	kbFill(b, st, ds, coll.ID, 0, kbCorpusN)
	b.Logf("corpus: %d chunks stored in %v", kbCorpusN, time.Since(start).Round(time.Millisecond))
	// the full-text index, caught up through the store's pending list the
	// way the Service does it
	text, err := fulltext.Open(filepath.Join(dir, "fulltext.bleve"))
	if err != nil {
		b.Fatal(err)
	}
	for {
		pend, err := st.TextPending(ctx, 2000)
		if err != nil {
			b.Fatal(err)
		}
		if len(pend) == 0 {
			break
		}
		docs := make([]dataset.TextDoc, len(pend))
		for i, p := range pend {
			d, err := st.Data(ctx, p.DataID)
			if err != nil {
				b.Fatal(err)
			}
			docs[i] = dataset.TextDoc{ID: d.ID, DatasetID: d.DatasetID, Text: d.Q + "\n" + d.A}
		}
		if err := text.Index(ctx, docs); err != nil {
			b.Fatal(err)
		}
		if err := st.ClearTextPending(ctx, pend); err != nil {
			b.Fatal(err)
		}
	}
	if err := text.Close(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte(ds.ID), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("corpus: built in %v at %s (%.0f MB)", time.Since(start).Round(time.Millisecond), dir, float64(kbDirSize(dir))/1e6)
	return dir, ds.ID
}

// kbDirSize is the disk space the files under path take, in blocks
// allocated (a thousand 1 KiB files take a thousand 4 KiB blocks).
func kbDirSize(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else if !d.IsDir() {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// kbPercentile returns the p-quantile (0-1) of ds in milliseconds,
// nearest rank; it sorts ds.
func kbPercentile(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	i := int(p*float64(len(ds))+0.5) - 1
	i = max(0, min(i, len(ds)-1))
	return float64(ds[i]) / 1e6
}

// kbUsage stands for the server's billing ledger, so that training counts
// the tokens it bills, as it does in the server; it keeps nothing.
type kbUsage struct{}

func (kbUsage) RecordDatasetUsage(context.Context, dataset.UsageRecord) error { return nil }

// kbParked is an embedder that never answers until the Service closes:
// items stay queued, so a push benchmark can measure pushes alone.
type kbParked struct{}

func (kbParked) Embed(ctx context.Context, _ []string) ([][]float32, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// kbCPU is the CPU time the process has used, user and system: unlike the
// wall clock, it hardly depends on what else the machine runs.
func kbCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kbPushService is a Service on a fresh bbolt file and on-disk bleve
// index, with one collection, the options the server uses (defaults, and a
// usage recorder), training with emb.
func kbPushService(b *testing.B, emb dataset.Embedder) (*dataset.Service, string, func()) {
	dir := b.TempDir()
	s, _, closeAll := kbOpen(b, dir, dataset.Options{Usage: kbUsage{},
		Embedders: map[string]dataset.Embedder{dataset.LocalModel: emb}}, false)
	ctx := context.Background()
	ds, err := s.CreateDataset(ctx, kbTeam, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.CreateCollection(ctx, kbTeam, ds.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return s, c.ID, closeAll
}

func kbPush(b *testing.B, s *dataset.Service, collID string, from, n int) {
	items := make([]dataset.PushItem, n)
	for i := range items {
		items[i] = dataset.PushItem{Q: kbText(from + i), A: fmt.Sprintf("answer %d", from+i)}
	}
	res, err := s.Push(context.Background(), dataset.PushRequest{TeamID: kbTeam, CollectionID: collID, Data: items})
	if err != nil || res.InsertLen != n {
		b.Fatalf("push: %v %+v", err, res)
	}
}

// BenchmarkPushIndex measures durable pushData in index mode: pushes of
// 500 items on a bbolt file (each fsynced before Push returns). With
// "training" the two workers embed with the local embedder meanwhile, as
// in the server; with "queue-only" nothing trains, so the figures are the
// pushes' alone. One iteration is 20 pushes; items/s counts acknowledged
// items, cpu-µs/item the process's CPU time per item.
func BenchmarkPushIndex(b *testing.B) {
	for _, tc := range []struct {
		name string
		emb  dataset.Embedder
	}{{"training", dataset.LocalEmbedder{}}, {"queue-only", kbParked{}}} {
		b.Run(tc.name, func(b *testing.B) {
			s, collID, closeAll := kbPushService(b, tc.emb)
			defer closeAll()
			const pushes, per = 20, 500
			next := 0
			var lat []time.Duration
			cpu := kbCPU()
			for b.Loop() {
				for range pushes {
					start := time.Now()
					kbPush(b, s, collID, next, per)
					lat = append(lat, time.Since(start))
					next += per
				}
			}
			cpu = kbCPU() - cpu
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "acked-items/s")
			b.ReportMetric(kbPercentile(lat, 0.5), "push500-p50-ms")
			b.ReportMetric(float64(cpu.Microseconds())/float64(next), "cpu-µs/item")
		})
	}
}

// BenchmarkPushAndTrain pushes 10,000 items (20 pushes of 500) and waits
// until all are trained data (stored with their vectors, in the vector
// index), with the local embedder. Goal: 2,000 trained items/s. cpu-µs/item
// is the process's CPU time per item, full-text indexing included as far
// as it got.
func BenchmarkPushAndTrain(b *testing.B) {
	s, collID, closeAll := kbPushService(b, dataset.LocalEmbedder{})
	defer closeAll()
	ctx := context.Background()
	const n = 10_000
	next := 0
	cpu := kbCPU()
	for b.Loop() {
		for at := 0; at < n; at += 500 {
			kbPush(b, s, collID, next+at, 500)
		}
		next += n
		for {
			c, err := s.Collection(ctx, kbTeam, collID)
			if err != nil {
				b.Fatal(err)
			}
			if c.DataAmount >= next {
				break
			}
			if c.FailedAmount > 0 {
				b.Fatalf("%d items failed", c.FailedAmount)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	cpu = kbCPU() - cpu
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "trained-items/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(next), "cpu-µs/item")
}

// kbSetups are the indexes the 100k benchmarks run on: "default" is what
// the server opens by default (a FlatStore and the built-in full-text
// index), "chromem" has chromemstore.Store for vectors, "bleve" the
// on-disk bleve index for full text (the server's dataset.full_text:
// bleve, its default before issue 15).
var kbSetups = []struct {
	name    string
	vectors func() dataset.VectorStore
	bleve   bool
}{
	{"default", func() dataset.VectorStore { return nil }, false},
	{"chromem", func() dataset.VectorStore { return chromemstore.New() }, false},
	{"bleve", func() dataset.VectorStore { return nil }, true},
}

// BenchmarkSearchLatency100k measures Service.Search over 100,000 chunks of
// 256-dimension vectors in one dataset, opened as the server opens it:
// p50 and p99 of kbQueries queries per mode (limit 10), and how often the
// chunk a query was cut from is among the hits. Embedding runs on
// "default" and "chromem", full-text and mixed on "default" and "bleve".
func BenchmarkSearchLatency100k(b *testing.B) {
	dir, dsID := kbCorpus(b)
	ctx := context.Background()
	for _, setup := range kbSetups {
		s, _, closeAll := kbOpen(b, dir, dataset.Options{Vectors: setup.vectors()}, setup.bleve)
		for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText, dataset.SearchMixed} {
			if embedding := mode == dataset.SearchEmbedding; embedding && setup.bleve || !embedding && setup.name == "chromem" {
				continue
			}
			b.Run(mode+"/"+setup.name, func(b *testing.B) {
				var lat []time.Duration
				found, asked := 0, 0
				for b.Loop() {
					for j := range kbQueries {
						q, src := kbQuery(j, kbCorpusN)
						start := time.Now()
						res, err := s.Search(ctx, dataset.SearchRequest{TeamID: kbTeam, DatasetIDs: []string{dsID}, Text: q, Mode: mode})
						lat = append(lat, time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
						asked++
						for _, h := range res.Hits {
							if h.ID == kbID(src) {
								found++
								break
							}
						}
					}
				}
				b.ReportMetric(kbPercentile(lat, 0.5), "p50-ms")
				b.ReportMetric(kbPercentile(lat, 0.99), "p99-ms")
				b.ReportMetric(float64(found)/float64(asked), "hit@10")
			})
		}
		closeAll()
	}
}

// BenchmarkStartupLoad100k measures a restart with 100,000 chunks stored:
// from opening the bbolt file to dataset.New returning, every vector loaded
// into the vector index and, with the built-in full-text index, every item
// into it (bleve's is opened, as the server does). Goal: 3 s. Three starts
// per iteration; the median is reported, with the CPU time the process
// spent meanwhile (start-up uses two goroutines; the wall clock depends on
// what else the machine runs) and the part spent reading and decoding the
// vectors from bbolt alone.
func BenchmarkStartupLoad100k(b *testing.B) {
	dir, dsID := kbCorpus(b)
	ctx := context.Background()
	for _, setup := range kbSetups {
		b.Run(setup.name, func(b *testing.B) {
			var starts, cpus, reads []time.Duration
			for b.Loop() {
				for range 3 {
					runtime.GC()
					start, cpu := time.Now(), kbCPU()
					s, st, closeAll := kbOpen(b, dir, dataset.Options{Vectors: setup.vectors()}, setup.bleve)
					starts, cpus = append(starts, time.Since(start)), append(cpus, kbCPU()-cpu)
					b.StopTimer()
					for _, mode := range []string{dataset.SearchEmbedding, dataset.SearchFullText} {
						res, err := s.Search(ctx, dataset.SearchRequest{TeamID: kbTeam, DatasetIDs: []string{dsID}, Text: kbText(5), MaxResults: 1, Mode: mode})
						if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != kbID(5) {
							b.Fatalf("%s search after start-up: %v %+v", mode, err, res)
						}
					}
					start = time.Now()
					n := 0
					if err := st.EachVector(ctx, func(string, dataset.Vector) error { n++; return nil }); err != nil || n != kbCorpusN {
						b.Fatalf("%d vectors, %v", n, err)
					}
					reads = append(reads, time.Since(start))
					closeAll()
					b.StartTimer()
				}
			}
			b.ReportMetric(kbPercentile(starts, 0.5)/1e3, "start-s")
			b.ReportMetric(kbPercentile(cpus, 0.5)/1e3, "start-cpu-s")
			b.ReportMetric(kbPercentile(reads, 0.5)/1e3, "bbolt-read-s")
		})
	}
}

// BenchmarkPersistenceChoice compares the two ways DESIGN.md §2 allows to
// persist vectors, at 10,000 and 100,000 256-dimension vectors:
//
//   - chromem-files: chromem-go's own persistence, chromem.NewPersistentDB;
//     vectors added with AddDocuments in batches of 64 (a training batch),
//     start-up is NewPersistentDB reading the directory back.
//   - bbolt+chromem: the vectors written to a bbolt bucket, 64 per
//     transaction, keyed and encoded as BoltStore does, and added to an
//     in-memory chromem DB; start-up opens the file and loads every vector
//     into a new in-memory chromem DB.
//   - store-complete: the path the Service really takes, BoltStore.Complete
//     of 64 queued items per transaction (data record, q index, vector,
//     full-text mark, queue removal), and at start-up dataset.New loading
//     the vectors into a chromemstore.Store.
//
// Query latency is chromem's QueryEmbedding (10 nearest) after start-up.
//
// Crash safety, read in chromem-go v0.7.0's persistence.go and
// collection.go: AddDocument puts the document in the in-memory map first,
// then writes it with os.Create (which truncates) and a gob encoder
// straight into the final file, with no fsync, no temporary file and no
// rename, and nothing syncs the directory. A crash mid-write leaves a torn
// file, and NewPersistentDB stops at the first file it cannot decode, so
// the whole database fails to open; a power loss may lose documents that
// AddDocument reported written. Each document's file name is the first 4
// bytes of the SHA-256 of its id (8 hex characters): at 100,000 ids about
// one pair is expected to share a name, and the later silently replaces the
// earlier on disk (the "lost" metric counts them). Nor can a chromem file
// be written in the same transaction as the data record it indexes. bbolt
// commits are atomic and fsynced (copy-on-write B+tree, meta page written
// last), so the vector and its record are durable together or not at all.
func BenchmarkPersistenceChoice(b *testing.B) {
	ctx := context.Background()
	const batch = 64
	for _, n := range []int{10_000, 100_000} {
		texts := make([]string, n)
		for i := range texts {
			texts[i] = kbText(i)
		}
		vecs := kbEmbed(texts)
		queries := make([][]float32, kbQueries)
		for j := range queries {
			q, _ := kbQuery(j, n)
			queries[j] = kbEmbed([]string{q})[0]
		}
		queryP50 := func(b *testing.B, c *chromem.Collection) float64 {
			var lat []time.Duration
			for _, q := range queries {
				start := time.Now()
				res, err := c.QueryEmbedding(ctx, q, 10, nil, nil)
				lat = append(lat, time.Since(start))
				if err != nil || len(res) != 10 {
					b.Fatalf("query: %v, %d results", err, len(res))
				}
			}
			return kbPercentile(lat, 0.5)
		}
		refuse := func(context.Context, string) ([]float32, error) { return nil, fmt.Errorf("no embedding here") }

		b.Run(fmt.Sprintf("chromem-files/%d", n), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				start := time.Now()
				db, err := chromem.NewPersistentDB(dir, false)
				if err != nil {
					b.Fatal(err)
				}
				c, err := db.CreateCollection("ds", nil, refuse)
				if err != nil {
					b.Fatal(err)
				}
				for at := 0; at < n; at += batch {
					docs := make([]chromem.Document, 0, batch)
					for i := at; i < min(at+batch, n); i++ {
						docs = append(docs, chromem.Document{ID: kbID(i), Embedding: vecs[i]})
					}
					if err := c.AddDocuments(ctx, docs, runtime.GOMAXPROCS(0)); err != nil {
						b.Fatal(err)
					}
				}
				ingest := time.Since(start)
				runtime.GC()
				start = time.Now()
				db2, err := chromem.NewPersistentDB(dir, false)
				if err != nil {
					b.Fatal(err)
				}
				c2 := db2.GetCollection("ds", refuse)
				open := time.Since(start)
				b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-docs/s")
				b.ReportMetric(open.Seconds(), "start-s")
				b.ReportMetric(queryP50(b, c2), "query-p50-ms")
				b.ReportMetric(float64(n-c2.Count()), "lost")
				b.ReportMetric(float64(kbDirSize(dir))/1e6, "disk-MB")
			}
		})

		b.Run(fmt.Sprintf("bbolt+chromem/%d", n), func(b *testing.B) {
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "v.db")
				bucket, dsID := []byte("dataset.vectors"), "ds"
				start := time.Now()
				db, err := boltx.Open(path, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				mem := chromem.NewDB()
				c, _ := mem.CreateCollection(dsID, nil, refuse)
				for at := 0; at < n; at += batch {
					err := db.Update(func(tx *bbolt.Tx) error {
						bk, err := tx.CreateBucketIfNotExists(bucket)
						if err != nil {
							return err
						}
						for i := at; i < min(at+batch, n); i++ {
							if err := bk.Put([]byte(dsID+"\x00"+kbID(i)), kbEncode(vecs[i])); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					for i := at; i < min(at+batch, n); i++ {
						_ = c.AddDocument(ctx, chromem.Document{ID: kbID(i), Embedding: vecs[i]})
					}
				}
				ingest := time.Since(start)
				_ = db.Close()
				runtime.GC()
				start = time.Now()
				db, err = boltx.Open(path, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				mem2 := chromem.NewDB()
				c2, _ := mem2.CreateCollection(dsID, nil, refuse)
				err = db.View(func(tx *bbolt.Tx) error {
					return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
						return c2.AddDocument(ctx, chromem.Document{ID: string(k[len(dsID)+1:]), Embedding: kbDecode(v)})
					})
				})
				if err != nil {
					b.Fatal(err)
				}
				open := time.Since(start)
				_ = db.Close()
				b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-docs/s")
				b.ReportMetric(open.Seconds(), "start-s")
				b.ReportMetric(queryP50(b, c2), "query-p50-ms")
				b.ReportMetric(float64(n-c2.Count()), "lost")
				b.ReportMetric(float64(kbDirSize(path))/1e6, "disk-MB")
			}
		})

		b.Run(fmt.Sprintf("store-complete/%d", n), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				b.StopTimer()
				s, _, closeAll := kbOpen(b, dir, dataset.Options{Text: kbNopText{}, Vectors: chromemstore.New()}, false)
				ds, _ := s.CreateDataset(ctx, kbTeam, "v", "")
				coll, _ := s.CreateCollection(ctx, kbTeam, ds.ID, "v")
				closeAll()
				// enqueue everything first (untimed): the comparison is
				// of what storing a trained vector costs
				db, err := boltx.Open(filepath.Join(dir, "chatgate.db"), time.Second)
				if err != nil {
					b.Fatal(err)
				}
				st, _ := dataset.NewBoltStore(db)
				var done [][]dataset.Trained
				for at := 0; at < n; at += batch {
					var items []*dataset.TrainingItem
					var tr []dataset.Trained
					for i := at; i < min(at+batch, n); i++ {
						ct := time.Unix(1e9, int64(i)*1000).UTC()
						items = append(items, &dataset.TrainingItem{ID: kbID(i), TeamID: kbTeam, DatasetID: ds.ID, CollectionID: coll.ID, Q: texts[i], CreateTime: ct})
						tr = append(tr, dataset.Trained{ItemID: kbID(i),
							Data:    []*dataset.Data{{ID: kbID(i), TeamID: kbTeam, DatasetID: ds.ID, CollectionID: coll.ID, Q: texts[i], CreateTime: ct}},
							Vectors: []dataset.Vector{{ID: kbID(i), Values: vecs[i]}}})
					}
					if _, err := st.Enqueue(ctx, items); err != nil {
						b.Fatal(err)
					}
					done = append(done, tr)
				}
				vs := chromemstore.New()
				b.StartTimer()
				start := time.Now()
				for _, tr := range done {
					if gone, err := st.Commit(ctx, tr); err != nil || len(gone) > 0 {
						b.Fatalf("complete: %v, %d gone", err, len(gone))
					}
					for _, t := range tr {
						_ = vs.Upsert(ctx, ds.ID, t.Vectors)
					}
				}
				ingest := time.Since(start)
				_ = db.Close()
				runtime.GC()
				start = time.Now()
				vs2 := chromemstore.New()
				_, _, closeAll = kbOpen(b, dir, dataset.Options{Text: kbNopText{}, Vectors: vs2}, false)
				open := time.Since(start)
				var lat []time.Duration
				for _, q := range queries {
					start := time.Now()
					hits, err := vs2.Query(ctx, ds.ID, q, 10)
					lat = append(lat, time.Since(start))
					if err != nil || len(hits) != 10 {
						b.Fatalf("query: %v, %d hits", err, len(hits))
					}
				}
				closeAll()
				b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-docs/s")
				b.ReportMetric(open.Seconds(), "start-s")
				b.ReportMetric(kbPercentile(lat, 0.5), "query-p50-ms")
				b.ReportMetric(float64(kbDirSize(filepath.Join(dir, "chatgate.db")))/1e6, "disk-MB")
			}
		})
	}
}

// kbEncode and kbDecode are BoltStore's vector encoding: float32s,
// little-endian.
func kbEncode(v []float32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, f := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
	}
	return out
}

func kbDecode(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
