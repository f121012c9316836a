package dataset_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/dataset/fulltext"
)

// The helper process of TestCrashSIGKILL reads its orders from these.
const (
	crashEnvDir   = "CHATGATE_CRASH_DIR"
	crashEnvMode  = "CHATGATE_CRASH_MODE" // "push" or "drain"
	crashEnvRound = "CHATGATE_CRASH_ROUND"
	crashEnvColl  = "CHATGATE_CRASH_COLLECTION"
	crashTeam     = "crash-team"

	crashMaxAttempts = 3
)

// crashWords are the words crash items are made of: English and Chinese,
// so both the embedder's and bleve's two kinds of terms are exercised.
var crashWords = strings.Fields(`invoice refund account password login server
	timeout deploy cluster replica backup restore quota billing tenant token model
	vector index search answer prompt upload export import schedule webhook
	retry latency region storage bucket archive mirror shard ledger credit
	退款 账户 密码 登录 服务器 超时 部署 集群 副本 备份 恢复 配额 账单 租户 模型
	向量 索引 搜索 答案 上传 导出 导入 计划 重试 延迟 区域 存储 归档 镜像 分片`)

// crashText is the q of item i of batch b of round r: unique by its
// prefix, and with eight words drawn from a source seeded by (r, b, i) so
// that no two items share their features.
func crashText(r, b, i int) string {
	rng := rand.New(rand.NewPCG(uint64(r)<<40|uint64(b)<<16|uint64(i), 7))
	var sb strings.Builder
	fmt.Fprintf(&sb, "r%db%di%d", r, b, i)
	for range 8 {
		sb.WriteByte(' ')
		sb.WriteString(crashWords[rng.IntN(len(crashWords))])
	}
	return sb.String()
}

// flakyLocal is the local embedder failing a call at random, so that items
// are retried and some fail for good (after crashMaxAttempts), while the
// process is killed.
type flakyLocal struct {
	mu   sync.Mutex
	rng  *rand.Rand
	fail float64
}

func (f *flakyLocal) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	bad := f.rng.Float64() < f.fail
	f.mu.Unlock()
	if bad {
		return nil, errors.New("flaky embedder: try again")
	}
	return dataset.LocalEmbedder{}.Embed(ctx, texts)
}

// crashTokens counts tokens; the helper loads its tables before it says
// READY, so that kills land in pushes and training, not in that load (long
// under the race detector).
var crashTokens = new(cl100k.Counter)

// openCrashService opens a Service on dir as the reference server does: a
// bbolt file and an on-disk bleve index.
func openCrashService(dir string, emb dataset.Embedder) (*dataset.Service, *dataset.BoltStore, func(), error) {
	db, err := bbolt.Open(filepath.Join(dir, "chatgate.db"), 0o600, &bbolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := dataset.NewBoltStore(db)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	text, err := fulltext.Open(filepath.Join(dir, "fulltext.bleve"))
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	s, err := dataset.New(context.Background(), dataset.Options{
		Store: st, Text: text, Embedders: map[string]dataset.Embedder{dataset.LocalModel: emb},
		Tokens: crashTokens, Workers: 2, BatchSize: 8, MaxAttempts: crashMaxAttempts,
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, PollEvery: 10 * time.Millisecond,
	})
	if err != nil {
		text.Close()
		db.Close()
		return nil, nil, nil, err
	}
	return s, st, func() { _ = s.Close(context.Background()); _ = text.Close(); _ = db.Close() }, nil
}

// TestCrashHelper is the child process of TestCrashSIGKILL; in a normal
// run it does nothing. In "push" mode it pushes batches until it is
// killed, writing "ACK <q>" for each item of a batch only after Push
// returned; in "drain" mode it waits until nothing is queued.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the child process of TestCrashSIGKILL")
	}
	round, _ := strconv.Atoi(os.Getenv(crashEnvRound))
	collID := os.Getenv(crashEnvColl)
	emb := &flakyLocal{rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), fail: 0.25}
	s, _, _, err := openCrashService(dir, emb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := crashTokens.Warm(); err != nil {
		t.Fatal(err)
	}
	// one write per line: a write of less than PIPE_BUF bytes to a pipe is
	// atomic, and the parent ignores a last line without its newline
	fmt.Fprintln(os.Stdout, "READY")
	if os.Getenv(crashEnvMode) == "drain" {
		for {
			queued, _, err := trainingCounts(ctx, s, collID)
			if err != nil {
				t.Fatal(err)
			}
			if queued == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Fprintln(os.Stdout, "DRAINED")
		// no Close: the parent may as well kill us here
		return
	}
	for b := 0; ; b++ {
		items := make([]dataset.PushItem, 1+b%12)
		for i := range items {
			items[i] = dataset.PushItem{Q: crashText(round, b, i), A: fmt.Sprintf("answer %d.%d.%d", round, b, i)}
		}
		res, err := s.Push(ctx, dataset.PushRequest{TeamID: crashTeam, CollectionID: collID, Data: items})
		if err != nil {
			t.Fatal(err)
		}
		if res.InsertLen != len(items) {
			t.Fatalf("push of %d: %+v", len(items), res)
		}
		var out bytes.Buffer
		for _, it := range items {
			fmt.Fprintf(&out, "ACK %s\n", it.Q)
		}
		if _, err := os.Stdout.Write(out.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}

// trainingCounts reads a collection's queued and failed counts through
// the Service (Collection reports both).
func trainingCounts(ctx context.Context, s *dataset.Service, collID string) (queued, failed int, err error) {
	c, err := s.Collection(ctx, crashTeam, collID)
	if err != nil {
		return 0, 0, err
	}
	return c.TrainingAmount, c.FailedAmount, nil
}

// crashChild runs the helper and feeds its complete stdout lines to lines,
// closed when the child's stdout is.
type crashChild struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
}

func startCrashChild(t *testing.T, dir, collID, mode string, round int) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvMode+"="+mode,
		crashEnvRound+"="+strconv.Itoa(round), crashEnvColl+"="+collID)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, lines: make(chan string, 4096), stderr: new(bytes.Buffer)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return // a partial last line was cut by the kill: not acknowledged
			}
			c.lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	return c
}

// waitLine waits for a line from the child, failing with its stderr when
// it exits first or takes too long.
func (c *crashChild) waitLine(t *testing.T, want string, onOther func(string)) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("child exited before %q: %v\n%s", want, c.cmd.ProcessState, tail(c.stderr.String()))
			}
			if l == want {
				return
			}
			onOther(l)
		case <-timeout:
			_ = c.cmd.Process.Kill()
			t.Fatalf("child did not write %q in 30s\n%s", want, tail(c.stderr.String()))
		}
	}
}

// kill SIGKILLs the child and passes every complete line it wrote to fn.
func (c *crashChild) kill(fn func(string)) {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	for l := range c.lines {
		fn(l)
	}
	_ = c.cmd.Wait()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// TestCrashSIGKILL kills a process that pushes while it trains (with an
// embedder failing a quarter of its calls, so items are retried and some
// fail for good) with SIGKILL at random moments, then lets a new process
// drain the queue, and checks what a restart promises: every acknowledged
// item is stored exactly once, as data or as a recorded failure; each data
// item has exactly one vector; both searches find the items.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs helper processes for several seconds")
	}
	ctx := context.Background()
	dir := t.TempDir()
	var dsID, collID string
	{
		s, _, closeAll, err := openCrashService(dir, dataset.LocalEmbedder{})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := s.CreateDataset(ctx, crashTeam, "crash", "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.CreateCollection(ctx, crashTeam, ds.ID, "crash")
		if err != nil {
			t.Fatal(err)
		}
		dsID, collID = ds.ID, c.ID
		closeAll()
	}

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHATGATE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set CHATGATE_CRASH_SEED to repeat the kill delays)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	acked := map[string]bool{}
	onLine := func(l string) {
		if q, ok := strings.CutPrefix(l, "ACK "); ok {
			if acked[q] {
				t.Errorf("%q acknowledged twice", q)
			}
			acked[q] = true
		}
	}
	const rounds = 8
	for round := range rounds {
		c := startCrashChild(t, dir, collID, "push", round)
		c.waitLine(t, "READY", onLine)
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		time.Sleep(delay)
		before := len(acked)
		c.kill(onLine)
		t.Logf("round %d: killed %v after start-up, %d items acknowledged", round, delay, len(acked)-before)
	}
	// kill a drain too, in the middle of training and full-text catch-up
	{
		c := startCrashChild(t, dir, collID, "drain", 0)
		c.waitLine(t, "READY", onLine)
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		c.kill(onLine)
	}
	if len(acked) < 50 {
		t.Fatalf("only %d items acknowledged in %d rounds: the test proves little", len(acked), rounds)
	}
	{
		c := startCrashChild(t, dir, collID, "drain", 0)
		c.waitLine(t, "READY", onLine)
		c.waitLine(t, "DRAINED", onLine)
		c.kill(onLine) // it has nothing left to do
	}

	s, st, closeAll, err := openCrashService(dir, dataset.LocalEmbedder{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	queued, failed, err := trainingCounts(ctx, s, collID)
	if err != nil {
		t.Fatal(err)
	}
	if queued != 0 {
		t.Fatalf("%d items still queued after the drain", queued)
	}
	list, total, err := s.DataList(ctx, crashTeam, collID, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != total {
		t.Fatalf("DataList returned %d of %d items", len(list), total)
	}
	failures, err := s.TrainingFailures(ctx, crashTeam, collID, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != failed {
		t.Errorf("%d failures listed, %d counted", len(failures), failed)
	}
	stored := map[string]int{} // q -> times stored, as data or failure
	dataIDs := map[string]bool{}
	isData := map[string]bool{}
	for _, d := range list {
		stored[d.Q]++
		dataIDs[d.ID] = true
		isData[d.Q] = true
		if d.DatasetID != dsID || d.CollectionID != collID {
			t.Errorf("data %s in dataset %s, collection %s", d.ID, d.DatasetID, d.CollectionID)
		}
	}
	for _, f := range failures {
		stored[f.Q]++
		if !f.Failed || f.Attempts != crashMaxAttempts || !strings.Contains(f.LastError, "flaky embedder") {
			t.Errorf("failure %s: failed %v after %d attempts, last error %q", f.ID, f.Failed, f.Attempts, f.LastError)
		}
	}
	for q := range acked {
		if stored[q] != 1 {
			t.Errorf("acknowledged %q stored %d times", q, stored[q])
		}
	}
	unacked := 0
	for q, n := range stored {
		if n > 1 {
			t.Errorf("%q stored %d times", q, n)
		}
		if !acked[q] {
			unacked++ // queued by a push the kill kept from answering
		}
	}

	// one vector per data item, each naming a stored item, none elsewhere
	vecIDs := map[string]int{}
	if err := st.EachVector(ctx, func(ds string, v dataset.Vector) error {
		if ds != dsID {
			t.Errorf("vector %s of unknown dataset %s", v.ID, ds)
			return nil
		}
		vecIDs[v.ID]++
		if len(v.Values) != dataset.DefaultDimensions {
			t.Errorf("vector %s has %d dimensions", v.ID, len(v.Values))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(vecIDs) != total {
		t.Errorf("%d vectors for %d data items", len(vecIDs), total)
	}
	for id := range vecIDs {
		if !dataIDs[id] {
			t.Errorf("vector %s belongs to no data item", id)
		}
	}
	t.Logf("%d acknowledged; %d data, %d failed for good, %d stored but unacknowledged, %d vectors",
		len(acked), total, len(failures), unacked, len(vecIDs))

	// searches find a sample of the acknowledged data items: the vector
	// search ranks the exact q first at once (vectors are loaded at start);
	// the full-text index may still be catching up, so it gets a while
	var sample []string
	for q := range acked {
		if isData[q] {
			sample = append(sample, q)
		}
		if len(sample) == 15 {
			break
		}
	}
	for _, q := range sample {
		res, err := s.Search(ctx, dataset.SearchRequest{TeamID: crashTeam, DatasetIDs: []string{dsID}, Text: q, MaxResults: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) == 0 || res.Hits[0].Q != q || res.Hits[0].Score < 0.999 {
			t.Errorf("embedding search for %q: %+v", q, res.Hits)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, q := range sample {
		for {
			res, err := s.Search(ctx, dataset.SearchRequest{TeamID: crashTeam, DatasetIDs: []string{dsID},
				Text: q, Mode: dataset.SearchFullText, MaxResults: 5})
			if err != nil {
				t.Fatal(err)
			}
			if slicesContainsQ(res.Hits, q) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("full-text search for %q: %+v", q, res.Hits)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func slicesContainsQ(hits []dataset.SearchHit, q string) bool {
	for _, h := range hits {
		if h.Q == q {
			return true
		}
	}
	return false
}
