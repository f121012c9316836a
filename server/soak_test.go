package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgate/chatgate/cl100k"
	"github.com/chatgate/chatgate/dataset"
	"github.com/chatgate/chatgate/internal/postgres/pgtest"
	"github.com/chatgate/chatgate/internal/redistest"
	"github.com/chatgate/chatgate/server"
)

// soRedisEnv, with rpChildEnv, makes TestRedisReplicaChild serve: the
// Redis the replica counts its limits in.
const soRedisEnv = "CHATGATE_REPLICA_CHILD_REDIS"

// TestRedisReplicaChild is one replica of the soak: TestReplicaChild's
// server, counting its limits in the Redis soRedisEnv names.
func TestRedisReplicaChild(t *testing.T) {
	dsn, addr := os.Getenv(rpChildEnv), os.Getenv(soRedisEnv)
	if dsn == "" || addr == "" {
		t.Skip("runs as a child of the soak test")
	}
	cfg := rpChildConfig(dsn)
	cfg.Redis.Addr = addr
	cfg.Redis.Prefix = "soak:"
	cfg.Redis.Timeout = server.Duration(200 * time.Millisecond) // an outage fails fast
	// slower than rpPaced, so that a kill 1.5 s after a push finds it training
	cfg.Dataset.ExtraEmbedders = map[string]dataset.Embedder{"paced": soPaced{}}
	childServe(cfg)
}

// soPaced is the local embedder at a slow remote model's pace: 2 s a
// call of several texts (training), none for one (a query).
type soPaced struct{ dataset.LocalEmbedder }

func (e soPaced) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) > 1 {
		time.Sleep(2 * time.Second)
	}
	return e.LocalEmbedder.Embed(ctx, texts)
}

// soStart starts a replica on dsn counting its limits in Redis at addr.
func soStart(t *testing.T, dsn, addr string, n int) *child {
	t.Helper()
	return startChild(t, "^TestRedisReplicaChild$",
		[]string{rpChildEnv + "=" + dsn, soRedisEnv + "=" + addr, rpDirEnv + "=" + t.TempDir()}, n)
}

// soDo makes one call and returns its status (0: no answer: the replica
// was killed, or the call was cut) and body.
func soDo(method, url, key, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := blClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, raw
	}
	return resp.StatusCode, raw
}

// soOutcome classifies an answer: "200", "429", "503 limits" (refused
// before any work), "no answer", or the status and error code.
func soOutcome(st int, raw []byte) string {
	switch {
	case st == 0:
		return "no answer"
	case st == 503 && strings.Contains(string(raw), "limits_unavailable"):
		return "503 limits"
	case st == 200 || st == 429:
		return strconv.Itoa(st)
	}
	var e struct {
		Error      struct{ Code string } `json:"error"`
		StatusText string                `json:"statusText"`
	}
	_ = json.Unmarshal(raw, &e)
	return strings.TrimSpace(fmt.Sprintf("%d %s%s", st, e.Error.Code, e.StatusText))
}

// soDecided reports whether an outcome says for certain that the call did
// no work: a refusal. A call with no answer, or a 5xx other than the limits'
// refusal, may or may not have done its work.
func soDecided(o string) bool {
	return o == "200" || o == "429" || o == "503 limits" || strings.HasPrefix(o, "4")
}

// soTally counts the outcomes of one kind of call.
type soTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *soTally) add(o string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[o]++
}

func (c *soTally) get(o string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}

// undecided is the number of calls that may or may not have done their work.
func (c *soTally) undecided() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for o, k := range c.n {
		if !soDecided(o) {
			n += k
		}
	}
	return n
}

func (c *soTally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []string
	for k := range c.n {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s: %d  ", k, c.n[k])
	}
	return strings.TrimSpace(b.String())
}

// soGoroutines reads go_goroutines from a replica's /metrics, or -1.
func soGoroutines(base string) int {
	resp, err := blClient.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// soRow is one invariant of the soak and its figures.
type soRow struct {
	name, figures string
	ok            bool
}

// soMaxInMinute is the most acknowledged requests certainly admitted
// within less than a minute of each other: for requests sorted by when
// they were sent, i..j were all admitted between the first's send and the
// latest answer among them. It returns that count and when its run began.
func soMaxInMinute(sent, answered []time.Time) (int, time.Time) {
	best, at := 0, time.Time{}
	for i := range sent {
		latest := answered[i]
		for j := i; j < len(sent); j++ {
			if answered[j].After(latest) {
				latest = answered[j]
			}
			if latest.Sub(sent[i]) >= time.Minute {
				break
			}
			if j-i+1 > best {
				best, at = j-i+1, sent[i]
			}
		}
	}
	return best, at
}

// The fault soak of issue 13: three replicas on Postgres and a Redis of
// the test's own, under 60 s of mixed load (keyed chats, streams the client
// cuts, pushData and training, searchTest, key rotation, a share link with
// a hook host, a key limited to 20 a minute, a key with a quota of 5.5
// chats) while a random replica is SIGKILLed every 15 s and Redis restarts
// once. Afterwards no acknowledged write is lost or doubled, the rate limit
// held cluster-wide, the quota was overspent by at most one chat, every
// finish callback arrived, and the survivors' goroutines did not grow.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60 s fault soak of three replicas")
	}
	if os.Getenv(pgtest.Env) == "" || os.Getenv(redistest.Env) == "" {
		t.Skip(pgtest.Env + " and " + redistest.Env + " must both be set: the soak runs on Postgres and Redis")
	}
	const (
		load     = 60 * time.Second
		killEach = 15 * time.Second
		rpm      = 20
		items    = 600
		batch    = 50
	)
	began := time.Now()
	rds := redistest.StartServer(t)
	dsn := pgtest.DSN(t)
	rs := []*child{soStart(t, dsn, rds.Addr, 0)} // the first makes the tables
	{
		ch := make(chan *child, 2)
		for i := 1; i < 3; i++ {
			go func() { ch <- soStart(t, dsn, rds.Addr, i) }()
		}
		for range 2 {
			r := <-ch
			if r == nil {
				t.FailNow()
			}
			rs = append(rs, r)
		}
	}
	pool := &rpPool{bases: []string{rs[0].base, rs[1].base, rs[2].base}}
	live := func() []string { pool.mu.Lock(); defer pool.mu.Unlock(); return slices.Clone(pool.bases) }
	a := rs[0].base
	pg, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	ledger := func(keyID, source string) (n int, points float64) {
		t.Helper()
		if err := pg.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(points), 0) FROM billing_records
			WHERE key_id = $1 AND source = $2`, keyID, source).Scan(&n, &points); err != nil {
			t.Fatal(err)
		}
		return n, points
	}

	// the keys, the dataset, the bill, the share link
	mkKey := func(spec string) (string, string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(spec), &m); err != nil {
			t.Fatal(err)
		}
		return blKey(t, a, m)
	}
	const question = "how are you doing today my friend"
	statelessChat := `{"messages":[{"role":"user","content":"` + question + `"}]}`
	probeID, probe := mkKey(`{"name":"probe","appId":"main"}`)
	if st, raw := blDo(t, "POST", a+"/api/v1/chat/completions", probe, statelessChat); st != 200 {
		t.Fatalf("probe chat: %d %s", st, raw)
	}
	n, one := ledger(probeID, "chat")
	if n != 1 || one <= 0 {
		t.Fatalf("probe chat: %d records, %v points", n, one)
	}
	quota := 5.5 * one
	histID, histKey := mkKey(`{"name":"history","appId":"main"}`)
	streamID, streamKey := mkKey(`{"name":"streams","appId":"main"}`)
	ledgerID, ledgerKey := mkKey(`{"name":"ledger","appId":"main"}`)
	_, rpmKey := mkKey(`{"name":"rpm","appId":"main","limit":{"rpm":` + strconv.Itoa(rpm) + `}}`)
	quotaSpec := `{"name":"quota","appId":"main","limit":{"maxUsagePoints":` + strconvF(quota) + `}}`
	_, loader := mkKey(`{"name":"loader","scopes":["dataset:read","dataset:write","billing:read"]}`)
	searchID, searcher := mkKey(`{"name":"searcher","scopes":["dataset:read"]}`)
	dsID, collID, bill, shareID, host := rpWorld(t, a, loader, "soak")
	q := func(i int) string { return fmt.Sprintf("soak item %04d: what does the item number %d say", i, i) }

	// warm-up: every kind of call on every replica, then the goroutines at rest
	for _, b := range live() {
		for _, c := range []struct{ path, key, body string }{
			{"/api/v1/chat/completions", ledgerKey, statelessChat},
			{"/api/v1/chat/completions", histKey, `{"chatId":"soak-warmup","messages":[{"role":"user","content":"warm up"}]}`},
			{"/api/v1/chat/completions", streamKey, `{"stream":true,"messages":[{"role":"user","content":"warm up"}]}`},
			{"/api/core/dataset/searchTest", searcher, fmt.Sprintf(`{"datasetId":%q,"text":"warm up","maxResults":5}`, dsID)},
			{"/api/v1/chat/completions", "", fmt.Sprintf(`{"shareId":%q,"outLinkUid":"warmup","messages":[{"role":"user","content":"warm up"}]}`, shareID)},
		} {
			if st, raw := soDo("POST", b+c.path, c.key, c.body); st != 200 {
				t.Fatalf("warm-up %s on %s: %d %s", c.path, b, st, raw)
			}
		}
	}
	rest := func() { blClient.CloseIdleConnections(); time.Sleep(1500 * time.Millisecond) }
	rest()
	baseline := make([]int, 3)
	for i, b := range live() {
		baseline[i] = soGoroutines(b)
	}
	ledgerBefore, _ := ledger(ledgerID, "chat") // the warm-up's
	histBefore, _ := ledger(histID, "chat")
	streamBefore, _ := ledger(streamID, "chat")
	searchBefore, _ := ledger(searchID, "search")

	killAt := func(k int) time.Duration { return time.Duration(k)*killEach - 5*time.Second } // 10 s, 25 s, 40 s, 55 s
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		t0      = time.Now()
		tallies = map[string]*soTally{}
		tally   = func(name string) *soTally { tallies[name] = &soTally{}; return tallies[name] }
	)
	// keyed chats: one conversation per worker, its turns one at a time
	type turns struct {
		chatID       string
		acked, maybe map[string]bool
	}
	histT := tally("keyed chats")
	convs := make([]*turns, 3)
	for w := range convs {
		c := &turns{chatID: fmt.Sprintf("soak-chat-%d", w), acked: map[string]bool{}, maybe: map[string]bool{}}
		convs[w] = c
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				qq := fmt.Sprintf("%s turn %d: tell me about %d", c.chatID, i, i)
				body, _ := json.Marshal(map[string]any{"chatId": c.chatID, "messages": []map[string]string{{"role": "user", "content": qq}}})
				o := soOutcome(soDo("POST", pool.pick()+"/api/v1/chat/completions", histKey, string(body)))
				histT.add(o)
				if o == "200" {
					c.acked[qq] = true
				} else if !soDecided(o) {
					c.maybe[qq] = true
				}
				time.Sleep(30 * time.Millisecond)
			}
		})
	}
	// streams the client cuts after the first chunk, in a conversation of their own
	streamT := tally("cut streams")
	streamed := map[string]bool{}
	// where and when each stream was cut: a replica killed just after a
	// cut may have stored the turn and died before billing it, two
	// commits to two stores that no client waits for
	type cutAt struct {
		base string
		at   time.Time
	}
	var cuts []cutAt
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			qq := fmt.Sprintf("soak stream %d: tell me a long story about %d", i, i)
			streamed[qq] = true
			body, _ := json.Marshal(map[string]any{"chatId": "soak-streams", "stream": true,
				"messages": []map[string]string{{"role": "user", "content": qq}}})
			ctx, cancel := context.WithCancel(context.Background())
			base := pool.pick()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/chat/completions", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+streamKey)
			req.Header.Set("Content-Type", "application/json")
			o := "no answer"
			if resp, err := blClient.Do(req); err == nil {
				buf := make([]byte, 64)
				if k, _ := resp.Body.Read(buf); k > 0 && resp.StatusCode == 200 {
					o = "200 cut"
					cuts = append(cuts, cutAt{base, time.Now()})
				} else if resp.StatusCode != 200 {
					o = strconv.Itoa(resp.StatusCode)
				}
				cancel()
				resp.Body.Close()
			}
			cancel()
			streamT.add(o)
			time.Sleep(50 * time.Millisecond)
		}
	})
	// pushData: each batch pushed until acknowledged, three just before
	// each kill, so that the kills find items queued and being trained
	var pushed, pushCalls atomic.Int32
	pushT := tally("pushData")
	for b := range items / batch {
		wg.Go(func() {
			lead := []time.Duration{1500 * time.Millisecond, 900 * time.Millisecond, 400 * time.Millisecond}[b%3]
			time.Sleep(time.Until(t0.Add(killAt(b/3+1) - lead)))
			data := make([]map[string]string, batch)
			for i := range data {
				k := b*batch + i
				data[i] = map[string]string{"q": q(k), "a": fmt.Sprintf("answer %d", k)}
			}
			body, _ := json.Marshal(map[string]any{"collectionId": collID, "billId": bill, "data": data})
			for {
				pushCalls.Add(1)
				o := soOutcome(soDo("POST", pool.pick()+"/api/core/dataset/data/pushData", loader, string(body)))
				pushT.add(o)
				if o == "200" {
					pushed.Add(batch)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	// searchTest
	searchT := tally("searchTest")
	wg.Go(func() {
		for !stop.Load() {
			body := fmt.Sprintf(`{"datasetId":%q,"text":%q,"maxResults":5,"searchMode":"embedding"}`, dsID, q(rand.IntN(items)))
			searchT.add(soOutcome(soDo("POST", pool.pick()+"/api/core/dataset/searchTest", searcher, body)))
			time.Sleep(100 * time.Millisecond)
		}
	})
	// key rotation: the new key works on every replica within a second; the
	// old one stops working on every replica within a second of its grace
	rotT := tally("rotate")
	var rotChecks, rotViolations atomic.Int32
	var rotMu sync.Mutex
	var rotProblems []string
	rotProblem := func(f string, args ...any) {
		rotViolations.Add(1)
		rotMu.Lock()
		rotProblems = append(rotProblems, fmt.Sprintf(f, args...))
		rotMu.Unlock()
	}
	wg.Go(func() {
		newKey := func() (string, string) {
			for {
				st, raw := soDo("POST", pool.pick()+"/api/support/openapi/create", rpRoot, `{"name":"rotated"}`)
				var e struct{ Data struct{ ID, Key string } }
				if st == 200 && json.Unmarshal(raw, &e) == nil && e.Data.Key != "" {
					return e.Data.ID, e.Data.Key
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		id, secret := newKey()
		const grace = time.Second
		for !stop.Load() {
			time.Sleep(2 * time.Second)
			st, raw := soDo("POST", pool.pick()+"/api/support/openapi/rotate", rpRoot, fmt.Sprintf(`{"id":%q,"graceSeconds":1}`, id))
			o := soOutcome(st, raw)
			rotT.add(o)
			var e struct{ Data struct{ ID, Key string } }
			if o != "200" || json.Unmarshal(raw, &e) != nil || e.Data.Key == "" {
				id, secret = newKey() // the old one's state is unknown
				continue
			}
			rotated, old := time.Now(), secret
			secret = e.Data.Key
			for _, b := range live() {
				for {
					st, _ := soDo("GET", b+"/api/support/openapi/me", secret, "")
					if st == 200 || st == 0 {
						break
					}
					if time.Since(rotated) > time.Second {
						rotProblem("the rotated key answered %d on %s %v after the rotation", st, b, time.Since(rotated))
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			time.Sleep(time.Until(rotated.Add(grace)))
			for _, b := range live() {
				for {
					st, _ := soDo("GET", b+"/api/support/openapi/me", old, "")
					if st == 401 || st == 0 {
						break
					}
					if time.Since(rotated) > grace+time.Second {
						rotProblem("the old key answered %d on %s %v after a rotation with %v grace", st, b, time.Since(rotated), grace)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			rotChecks.Add(1)
		}
	})
	// share-link visitors
	visitT := tally("share visitors")
	var visitors sync.Map
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			token := fmt.Sprintf("visitor-%d", i)
			body := fmt.Sprintf(`{"shareId":%q,"outLinkUid":%q,"messages":[{"role":"user","content":"hello %d"}]}`, shareID, token, i)
			o := soOutcome(soDo("POST", pool.pick()+"/api/v1/chat/completions", "", body))
			visitT.add(o)
			if o == "200" {
				visitors.Store(token, true)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// the key limited to 20 a minute, hammered on every replica
	rpmT := tally("rpm key")
	var rpmMu sync.Mutex
	var rpmSent, rpmAnswered []time.Time
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				sent := time.Now()
				o := soOutcome(soDo("GET", pool.pick()+"/api/support/openapi/me", rpmKey, ""))
				rpmT.add(o)
				if o == "200" {
					rpmMu.Lock()
					rpmSent, rpmAnswered = append(rpmSent, sent), append(rpmAnswered, time.Now())
					rpmMu.Unlock()
				}
				time.Sleep(40 * time.Millisecond)
			}
		})
	}
	// keys with a quota of 5.5 chats: a fresh one at the start and half a
	// second before each fault, spent at about 7 chats a second, so that
	// each fault comes while its key is being spent
	type quotaKey struct {
		id, secret string
		from       time.Duration
		t          soTally
	}
	var quotaKeys []*quotaKey
	var currentQuota atomic.Pointer[quotaKey]
	{
		id, secret := mkKey(quotaSpec)
		quotaKeys = append(quotaKeys, &quotaKey{id: id, secret: secret})
		currentQuota.Store(quotaKeys[0])
	}
	wg.Go(func() {
		for _, at := range []time.Duration{killAt(1), killAt(2), 32 * time.Second, killAt(3), killAt(4)} {
			time.Sleep(time.Until(t0.Add(at - 500*time.Millisecond)))
			for {
				st, raw := soDo("POST", pool.pick()+"/api/support/openapi/create", rpRoot, quotaSpec)
				var e struct{ Data struct{ ID, Key string } }
				if st == 200 && json.Unmarshal(raw, &e) == nil && e.Data.Key != "" {
					k := &quotaKey{id: e.Data.ID, secret: e.Data.Key, from: time.Since(t0)}
					quotaKeys = append(quotaKeys, k) // read after wg.Wait
					currentQuota.Store(k)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				k := currentQuota.Load()
				k.t.add(soOutcome(soDo("POST", pool.pick()+"/api/v1/chat/completions", k.secret, statelessChat)))
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
	// the key whose ledger is counted
	ledgerT := tally("ledger key")
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				ledgerT.add(soOutcome(soDo("POST", pool.pick()+"/api/v1/chat/completions", ledgerKey, statelessChat)))
				time.Sleep(60 * time.Millisecond)
			}
		})
	}

	// the faults: a random replica SIGKILLed every 15 s (never the last one
	// not yet killed, so that one survives to be measured), Redis restarted once
	killed := make([]bool, 3)
	var kills []string
	var killedAt []cutAt // the replicas killed, by base URL, and when
	redisDone := false
	var redisOutage time.Duration
	var redisDown, redisUp time.Time
	for k := 1; ; k++ {
		next := t0.Add(killAt(k))
		if !redisDone && next.After(t0.Add(32*time.Second)) {
			time.Sleep(time.Until(t0.Add(32 * time.Second)))
			at := time.Now()
			rds.Stop()
			time.Sleep(1500 * time.Millisecond)
			rds.Start()
			redisDown, redisUp = at, time.Now()
			redisOutage = redisUp.Sub(at)
			redisDone = true
			t.Logf("%5.1fs redis restarted (down %v)", at.Sub(t0).Seconds(), redisOutage.Round(time.Millisecond))
		}
		if next.After(t0.Add(load)) {
			break
		}
		time.Sleep(time.Until(next))
		i := rand.IntN(3)
		if !killed[i] && !slices.Contains(append(slices.Clone(killed[:i]), killed[i+1:]...), false) {
			i = (i + 1 + rand.IntN(2)) % 3 // i is the last survivor
		}
		var queued int // training items waiting or claimed as the kill comes
		if err := pg.QueryRow(context.Background(), `SELECT count(*) FROM dataset_training`).Scan(&queued); err != nil {
			t.Logf("counting the training queue: %v", err)
		}
		at := time.Since(t0)
		killedAt = append(killedAt, cutAt{rs[i].base, time.Now()})
		rs[i].kill(t)
		killed[i] = true
		pool.set(i, rs[(i+1)%3].base)
		rs[i] = soStart(t, dsn, rds.Addr, 10+k)
		pool.set(i, rs[i].base)
		kills = append(kills, fmt.Sprintf("%.1fs replica %d (%d items queued; back after %.1fs)", at.Seconds(), i, queued, (time.Since(t0)-at).Seconds()))
		t.Logf("%5.1fs killed replica %d with %d training items queued, back after %.1fs", at.Seconds(), i, queued, (time.Since(t0) - at).Seconds())
	}
	time.Sleep(time.Until(t0.Add(load)))
	stop.Store(true)
	loadEnd := time.Now()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the load did not stop 90 s after its end (pushed %d of %d items; a call hung: quota Reserve?)", pushed.Load(), items)
	}
	t.Logf("load ran %v; the workers stopped %v later", loadEnd.Sub(t0).Round(time.Millisecond), time.Since(loadEnd).Round(time.Millisecond))

	var rows []soRow
	row := func(name string, ok bool, f string, args ...any) {
		rows = append(rows, soRow{name, fmt.Sprintf(f, args...), ok})
	}

	// data: every item trained once, one vector each, on every replica
	type detail struct{ TrainingAmount, DataAmount, FailedAmount int }
	trainedOK := true
	for _, b := range live() {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var d detail
			blCall(t, "GET", b+"/api/core/dataset/collection/detail?id="+collID, loader, "", &d)
			if d.FailedAmount != 0 || (d.TrainingAmount == 0 && d.DataAmount == items) {
				trainedOK = trainedOK && d.FailedAmount == 0
				break
			}
			if time.Now().After(deadline) {
				trainedOK = false
				t.Logf("%s: %+v after 60 s; want %d trained", b, d, items)
				break
			}
		}
	}
	var nData, nVec, nDistinctQ int
	if err := pg.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM dataset_data), (SELECT count(*) FROM dataset_vectors),
		(SELECT count(DISTINCT qhash) FROM dataset_data)`).Scan(&nData, &nVec, &nDistinctQ); err != nil {
		t.Fatal(err)
	}
	row("data: acked items trained once, one vector each", trainedOK && nData == items && nVec == items && nDistinctQ == items,
		"%d items acked in %d pushData calls; Postgres: %d data, %d distinct q, %d vectors", pushed.Load(), pushCalls.Load(), nData, nDistinctQ, nVec)

	// the training bill: each item's q embedded once
	var tok cl100k.Counter
	wantTokens := 0
	for i := range items {
		wantTokens += tok.Count(q(i))
	}
	var bd struct {
		TotalTokens int `json:"totalTokens"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		blCall(t, "GET", live()[0]+"/api/common/bill/detail?id="+bill, loader, "", &bd)
		if bd.TotalTokens >= wantTokens || time.Now().After(deadline) {
			break
		}
	}
	row("bill: training tokens = items' tokens", bd.TotalTokens == wantTokens, "%d on the bill, %d for the items", bd.TotalTokens, wantTokens)

	// search finds items alike on every replica
	searchOK, searchAfter := 0, 0 // searches after the load, billed too
	for _, b := range live() {
		for range 3 {
			i := rand.IntN(items)
			st, raw := soDo("POST", b+"/api/core/dataset/searchTest", searcher,
				fmt.Sprintf(`{"datasetId":%q,"text":%q,"maxResults":3,"searchMode":"embedding"}`, dsID, q(i)))
			var env struct {
				Data []struct{ Q string } `json:"data"`
			}
			if st == 200 {
				searchAfter++
			}
			if st == 200 && json.Unmarshal(raw, &env) == nil && len(env.Data) > 0 && env.Data[0].Q == q(i) {
				searchOK++
			}
		}
	}
	row("search: items found first on every replica", searchOK == 9, "%d of 9 searches after training; during load: %s", searchOK, searchT)

	// history: each acknowledged turn once, no turn twice
	records := func(key, chatID string) []struct{ Obj, Value string } {
		var all []struct{ Obj, Value string }
		for off := 0; ; off += 2000 {
			var page struct {
				List  []struct{ Obj, Value string } `json:"list"`
				Total int                           `json:"total"`
			}
			blCall(t, "GET", fmt.Sprintf("%s/api/core/chat/getPaginationRecords?appId=main&chatId=%s&offset=%d&pageSize=2000", live()[0], chatID, off),
				key, "", &page)
			all = append(all, page.List...)
			if len(all) >= page.Total || len(page.List) == 0 {
				return all
			}
		}
	}
	var ackedTurns, maybeTurns, storedTurns, lost, doubled, strays, unpaired int
	for _, c := range convs {
		seen := map[string]int{}
		recs := records(histKey, c.chatID)
		for k, r := range recs {
			if r.Obj == "Human" {
				seen[r.Value]++
				storedTurns++
				if k+1 >= len(recs) || recs[k+1].Obj != "AI" {
					unpaired++
				}
			}
		}
		for qq := range c.acked {
			if seen[qq] == 0 {
				lost++
				if lost <= 3 {
					t.Logf("lost: %q in %s", qq, c.chatID)
				}
			}
		}
		for qq, k := range seen {
			if k > 1 {
				doubled++
				t.Logf("doubled: %q %d times in %s", qq, k, c.chatID)
			}
			if !c.acked[qq] && !c.maybe[qq] {
				strays++
			}
		}
		ackedTurns += len(c.acked)
		maybeTurns += len(c.maybe)
	}
	row("history: acked turns stored once", lost == 0 && doubled == 0 && strays == 0 && unpaired == 0,
		"%d acked + %d undecided turns; %d stored: %d lost, %d doubled, %d refused-yet-stored, %d without an answer",
		ackedTurns, maybeTurns, storedTurns, lost, doubled, strays, unpaired)
	streamSeen := map[string]int{}
	for _, r := range records(streamKey, "soak-streams") {
		if r.Obj == "Human" {
			streamSeen[r.Value]++
		}
	}
	streamDoubled, streamStray := 0, 0
	for qq, k := range streamSeen {
		if k > 1 {
			streamDoubled++
		}
		if !streamed[qq] {
			streamStray++
		}
	}
	row("cut streams: no turn stored twice", streamDoubled == 0 && streamStray == 0,
		"%d streams (%s); %d turns stored, %d doubled", len(streamed), streamT, len(streamSeen), streamDoubled)

	// the ledger: no acknowledged chat missing, none twice
	checkLedger := func(name, keyID, source string, before int, tl *soTally, okName string, each float64) {
		t.Helper()
		nn, pts := ledger(keyID, source)
		nn -= before
		if keyID == searchID {
			nn -= searchAfter
		}
		acked, undecided := tl.get(okName), tl.undecided()
		ok := nn >= acked && nn <= acked+undecided
		fig := fmt.Sprintf("%d records for %d acked + %d undecided calls", nn, acked, undecided)
		if each > 0 {
			ok = ok && math.Abs(pts-float64(nn+before)*each) <= 1e-9*math.Max(1, pts)
			fig += fmt.Sprintf("; %.6f points = %d x %.6f", pts, nn+before, each)
		}
		row(name, ok, "%s", fig)
	}
	checkLedger("ledger: stateless chats", ledgerID, "chat", ledgerBefore, ledgerT, "200", one)
	checkLedger("ledger: keyed chats", histID, "chat", histBefore, histT, "200", 0)
	histN, _ := ledger(histID, "chat")
	checkLedger("ledger: searchTest", searchID, "search", searchBefore, searchT, "200", 0)
	ns, _ := ledger(streamID, "chat")
	row("ledger: cut streams", ns-streamBefore <= len(streamed), "%d records for %d streams", ns-streamBefore, len(streamed))
	// A turn in the history was answered whole: it is billed, unless a
	// SIGKILL came between the two writes (a stream with no answer).
	storedStreams := 0
	for _, k := range streamSeen {
		storedStreams += k
	}
	// A cut stream's replica killed within a second of the cut may have
	// died between the two writes too; the client, gone, cannot tell.
	cutThenKilled := 0
	for _, c := range cuts {
		for _, k := range killedAt {
			if k.base == c.base && !k.at.Before(c.at) && k.at.Sub(c.at) < time.Second {
				cutThenKilled++
				break
			}
		}
	}
	undecidedStreams := streamT.get("no answer") + cutThenKilled
	row("history = ledger: every stored cut-stream turn billed", ns-streamBefore >= storedStreams-undecidedStreams,
		"%d turns stored, %d usage records, %d streams killed mid-way, %d cut less than 1s before their replica was killed",
		storedStreams, ns-streamBefore, streamT.get("no answer"), cutThenKilled)
	row("history = ledger: every stored keyed turn billed", histN-histBefore >= storedTurns-histT.undecided(),
		"%d turns stored, %d usage records, %d undecided", storedTurns, histN-histBefore, histT.undecided())
	// the quotas: each overspent by at most one chat; the key totals and
	// usagePoints agree with the ledger
	var qfig, tfig, ufig []string
	qok, totOK, uok := true, true, true
	maxOver := 0.0
	for _, k := range quotaKeys {
		nq, used := ledger(k.id, "chat")
		over := used - quota
		maxOver = max(maxOver, over)
		acked, undecided := k.t.get("200"), k.t.undecided()
		qok = qok && over <= one+1e-9 && nq >= acked && nq <= acked+undecided
		qfig = append(qfig, fmt.Sprintf("from %.1fs: %d acked + %d undecided, %d records, %.2f points [%s]",
			k.from.Seconds(), acked, undecided, nq, used, k.t.String()))
		var totSum float64
		if err := pg.QueryRow(context.Background(), `SELECT coalesce(sum(points), 0) FROM billing_key_points WHERE key_id = $1`,
			k.id).Scan(&totSum); err != nil {
			t.Fatal(err)
		}
		totOK = totOK && math.Abs(totSum-used) <= 1e-9
		tfig = append(tfig, fmt.Sprintf("%.2f/%.2f", totSum, used))
		var shown []string
		for _, b := range live() {
			u := blKeyUsage(t, b, k.id)
			shown = append(shown, fmt.Sprintf("%.2f", u))
			uok = uok && math.Abs(u-used) <= 1e-9
		}
		ufig = append(ufig, fmt.Sprintf("[%s]/%.2f", strings.Join(shown, " "), used))
	}
	row("quota: overspend <= one chat, every key", qok, "quota %.4f (5.5 x %.4f), %d keys, most overspent %.4f = %.2f chats; %s",
		quota, one, len(quotaKeys), max(maxOver, 0), max(maxOver, 0)/one, strings.Join(qfig, "; "))
	row("quota: key totals = their records", totOK, "billing_key_points/records: %s", strings.Join(tfig, " "))
	row("quota: usagePoints = ledger on every replica", uok, "usagePoints on the replicas/ledger: %s", strings.Join(ufig, " "))

	// the rate: never more than rpm in a minute, cluster-wide
	sort.Sort(soByFirst{rpmSent, rpmAnswered})
	most, at := soMaxInMinute(rpmSent, rpmAnswered)
	atS := -1.0
	if !at.IsZero() {
		atS = at.Sub(t0).Seconds()
	}
	var bs, ba, as, aa []time.Time // sent before Redis went down, after
	for i := range rpmSent {
		if rpmSent[i].Before(redisDown) {
			bs, ba = append(bs, rpmSent[i]), append(ba, rpmAnswered[i])
		} else {
			as, aa = append(as, rpmSent[i]), append(aa, rpmAnswered[i])
		}
	}
	mostBefore, _ := soMaxInMinute(bs, ba)
	mostAfter, _ := soMaxInMinute(as, aa)
	row("rate: <= rpm (+1) in any minute, cluster-wide", most <= rpm+1,
		"rpm %d; at most %d admitted within a minute (from %.1fs): %d before the Redis restart, %d after it "+
			"(at most %d, %d within a minute on either side alone); calls: %s",
		rpm, most, atS, len(bs), len(as), mostBefore, mostAfter, rpmT)

	// key rotation
	row("rotation: new key at once, old key gone after grace", rotViolations.Load() == 0 && rotChecks.Load() > 0,
		"%d rotations checked on every replica, %d violations; calls: %s", rotChecks.Load(), rotViolations.Load(), rotT)
	for _, p := range rotProblems[:min(5, len(rotProblems))] {
		t.Logf("rotation: %s", p)
	}

	// every acknowledged visitor's finish callback
	var acked []string
	visitors.Range(func(k, _ any) bool { acked = append(acked, k.(string)); return true })
	var missing []string
	repeated := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		host.mu.Lock()
		missing, repeated = nil, 0
		for _, tk := range acked {
			if host.finished[tk] == 0 {
				missing = append(missing, tk)
			}
			if host.finished[tk] > 1 {
				repeated++
			}
		}
		host.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	row("finish callbacks: one per acked visitor, at least", len(acked) > 0 && len(missing) == 0,
		"%d acked visitors, %d callbacks missing (%v), %d delivered more than once; calls: %s",
		len(acked), len(missing), missing[:min(3, len(missing))], repeated, visitT)

	// goroutines of the survivors, at rest again
	rest()
	rest()
	var gfig []string
	gok, survivors := true, 0
	for i, b := range live() {
		now := soGoroutines(b)
		if killed[i] {
			gfig = append(gfig, fmt.Sprintf("replica %d (restarted) %d", i, now))
			continue
		}
		survivors++
		allowed := baseline[i] + max(50, baseline[i]/5)
		gfig = append(gfig, fmt.Sprintf("replica %d %d -> %d (<= %d)", i, baseline[i], now, allowed))
		gok = gok && now >= 0 && now <= allowed
	}
	row("goroutines: no growth on the survivors", gok && survivors > 0, "%s", strings.Join(gfig, "; "))

	var b strings.Builder
	fmt.Fprintf(&b, "soak: 3 replicas, %v of load, kills at %s; redis restarted at 32.0s (down %v); %v in all\n",
		load, strings.Join(kills, ", "), redisOutage.Round(time.Millisecond), time.Since(began).Round(time.Second))
	for _, r := range rows {
		mark := "ok  "
		if !r.ok {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s  %-52s %s\n", mark, r.name, r.figures)
	}
	fmt.Fprintf(&b, "  calls: keyed chats %s | pushData %s", histT, pushT)
	t.Logf("%s", b.String())
	for _, r := range rows {
		if !r.ok {
			t.Errorf("invariant broken: %s: %s", r.name, r.figures)
		}
	}
}

// soByFirst sorts request times by when they were sent.
type soByFirst struct{ sent, answered []time.Time }

func (s soByFirst) Len() int           { return len(s.sent) }
func (s soByFirst) Less(i, j int) bool { return s.sent[i].Before(s.sent[j]) }
func (s soByFirst) Swap(i, j int) {
	s.sent[i], s.sent[j] = s.sent[j], s.sent[i]
	s.answered[i], s.answered[j] = s.answered[j], s.answered[i]
}
